import { it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc } from "effect"
import { describe, expect } from "vitest"
import {
  AccessRulesDiffCalculator,
  AgentKeyed,
  AgentsDiffCalculator,
  applyDiff,
  ContentDiffCalculator,
  ContentKeyed,
  diffKeyed,
  FileKeyed,
  FilesDiffCalculator,
  type Keyed
} from "../../src/domain/diff.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { AccessRule, Agent, Content, FileEntry } from "../../src/domain/model.js"
import { blankContent } from "../support/content.js"

const runs = { fastCheck: { numRuns: 1000 } }

/** Two sides drawn so that they overlap, differ, and miss each other's keys: some of b takes a's key, with a's content or b's own. */
const sides = <A>(arb: fc.Arbitrary<A>, keyed: Keyed<A>, rekey: (item: A, keyOf: A) => A) =>
  fc
    .tuple(fc.array(arb, { maxLength: 20 }), fc.array(arb, { maxLength: 20 }), fc.array(fc.nat(2), { maxLength: 20 }))
    .map(([a, b, picks]) => {
      const mixed = b.map((item, i) => {
        const other = a[i % Math.max(a.length, 1)]
        const pick = picks[i] ?? 0
        return other === undefined || pick === 0 ? item : pick === 1 ? other : rekey(item, other)
      })
      const uniq = (xs: ReadonlyArray<A>) => [...new Map(xs.map((x) => [keyed.key(x), x])).values()]
      return [uniq(a), uniq(mixed)] as const
    })

const agentArb = fc
  .record({
    id: fc.constantFrom("a", "b", "c", "d", "e"),
    name: fc.string(),
    prompt: fc.string(),
    enabled: fc.boolean(),
    settings: fc.dictionary(fc.constantFrom("x", "y"), fc.jsonValue({ maxDepth: 1 }))
  })
  .map(
    ({ prompt, settings, ...f }) =>
      // Valid by construction (an id of a-e, strings, JSON settings), so not checked against the schema again:
      // checking cost most of these laws' time and is not what they are about.
      new Agent(
        {
          ...f,
          display_name: f.name,
          description: "",
          tags: [],
          settings: JSON.parse(JSON.stringify(settings)),
          system_prompt: prompt
        },
        true
      )
  )
/**
 * Content items whose keys are drawn as before (source and slug from the schema's own arbitraries, cut short so
 * that keys collide) and whose other fields vary only through title and body. A diff sees an item through its
 * key and its hash alone, so what the laws cover is which items share a key and whether their hashes are equal:
 * unchanged from drawing every field, at a fraction of the cost (the hash over any field is the business of the
 * format and repository properties).
 */
/** A content item at `source`/`slug` with the given fields, every other field blank. */
const contentItem = (fields: Pick<Content, "source" | "slug"> & Partial<Content>) =>
  blankContent({ path: `${fields.slug}.md`, format: "yaml", head: null, kind: "", ...fields })

const contentArb = fc
  .record({
    source: Arbitrary.make(Content.fields.source),
    slug: Arbitrary.make(Content.fields.slug),
    title: fc.string({ maxLength: 3 }),
    body: fc.string({ maxLength: 3 })
  })
  .map(({ source, slug, title, body }) =>
    contentItem({ source: source.slice(0, 1) || "s", slug: slug.replace(/[/. ]/g, "").slice(0, 2) || "x", title, body })
  )
const fileArb = fc
  .record({
    path: fc.constantFrom("a", "b", "c/d", "c/e", "f/g/h", "z"),
    size: fc.nat(100),
    sha256: fc.constantFrom("0", "1", "2").map((c) => c.repeat(64))
  })
  .map((f) => new FileEntry(f))

const laws = <A>(name: string, arb: fc.Arbitrary<A>, keyed: Keyed<A>, rekey: (item: A, keyOf: A) => A) =>
  describe(`diff laws: ${name}`, () => {
    it.prop(
      "diff(a, a) is all Unchanged",
      [sides(arb, keyed, rekey)],
      ([[a]]) => {
        const d = diffKeyed(keyed, a, a)
        expect(d.items.every((i) => i.status === "Unchanged")).toBe(true)
        expect(d.counts.unchanged).toBe(a.length)
      },
      runs
    )

    it.prop(
      "applying diff(a, b) to b yields a",
      [sides(arb, keyed, rekey)],
      ([[a, b]]) => {
        const back = applyDiff(keyed, diffKeyed(keyed, a, b), b)
        const sorted = [...a].sort((x, y) => (keyed.key(x) < keyed.key(y) ? -1 : 1))
        expect(back.map(keyed.key)).toStrictEqual(sorted.map(keyed.key))
        expect(back.map(keyed.hash)).toStrictEqual(sorted.map(keyed.hash))
      },
      runs
    )

    it.prop(
      "swapping sides swaps Added and Removed, keeps Modified and Unchanged",
      [sides(arb, keyed, rekey)],
      ([[a, b]]) => {
        const ab = diffKeyed(keyed, a, b)
        const ba = diffKeyed(keyed, b, a)
        const flip = { Added: "Removed", Removed: "Added", Modified: "Modified", Unchanged: "Unchanged" } as const
        expect(ba.items.map((i) => [i.key, i.status])).toStrictEqual(ab.items.map((i) => [i.key, flip[i.status]]))
        expect(ba.counts).toStrictEqual({
          added: ab.counts.removed,
          removed: ab.counts.added,
          modified: ab.counts.modified,
          unchanged: ab.counts.unchanged
        })
      },
      runs
    )

    it.prop(
      "counts add up to the union of keys, each key once",
      [sides(arb, keyed, rekey)],
      ([[a, b]]) => {
        const d = diffKeyed(keyed, a, b)
        const union = new Set([...a.map(keyed.key), ...b.map(keyed.key)])
        const { added, modified, removed, unchanged } = d.counts
        expect(added + modified + removed + unchanged).toBe(union.size)
        expect(new Set(d.items.map((i) => i.key)).size).toBe(union.size)
      },
      runs
    )

    it.prop(
      "output order is deterministic: sorted by key whatever the input order",
      [sides(arb, keyed, rekey), fc.nat()],
      ([[a, b], seed]) => {
        const shuffle = <T>(xs: ReadonlyArray<T>) =>
          [...xs]
            .map((x, i) => [((i + 1) * (seed + 7919)) % 104729, x] as const)
            .sort((p, q) => p[0] - q[0])
            .map(([, x]) => x)
        const d1 = diffKeyed(keyed, a, b)
        const d2 = diffKeyed(keyed, shuffle(a), shuffle(b))
        expect(d2.items.map((i) => [i.key, i.status])).toStrictEqual(d1.items.map((i) => [i.key, i.status]))
        const keys = d1.items.map((i) => i.key)
        expect(keys).toStrictEqual([...keys].sort())
      },
      runs
    )
  })

laws("agents", agentArb, AgentKeyed, (a, k) => new Agent({ ...a, id: k.id }, true))
laws(
  "content (keyed by source + slug)",
  contentArb,
  ContentKeyed,
  (c, k) => new Content({ ...c, source: k.source, slug: k.slug, path: `${k.slug}.md` })
)
laws("files (two manifests)", fileArb, FileKeyed, (f, k) => new FileEntry({ ...f, path: k.path }))

describe("calculators", () => {
  it("classify each kind of change", () => {
    const base = {
      name: "n",
      display_name: "d",
      description: "",
      enabled: true,
      tags: [],
      settings: {},
      system_prompt: "p"
    }
    const d = AgentsDiffCalculator.diff(
      [
        new Agent({ ...base, id: "keep" }),
        new Agent({ ...base, id: "edit", system_prompt: "new" }),
        new Agent({ ...base, id: "new" })
      ],
      [new Agent({ ...base, id: "keep" }), new Agent({ ...base, id: "edit" }), new Agent({ ...base, id: "gone" })]
    )
    expect(d.items.map((i) => `${i.key}:${i.status}`)).toStrictEqual([
      "edit:Modified",
      "gone:Removed",
      "keep:Unchanged",
      "new:Added"
    ])
  })

  it("keys content by source and slug", () => {
    const c = (source: string, slug: string) => contentItem({ source, slug, title: "t", kind: "article" })
    const d = ContentDiffCalculator.diff([c("blog", "a"), c("docs", "a")], [c("blog", "a")])
    expect(d.items.map((i) => `${i.key}:${i.status}`)).toStrictEqual(["blog/a:Unchanged", "docs/a:Added"])
  })

  it("keys access rules by entity and access", () => {
    const r = (roles: Array<string>) => new AccessRule({ entity_type: "agent", entity_id: "a", access: "deny", roles })
    expect(AccessRulesDiffCalculator.diff([r(["x"])], [r(["y"])]).counts.modified).toBe(1)
  })

  it("diffs two file manifests by path and hash; the checksum ignores entry order", () => {
    const f = (path: string, h: string) => new FileEntry({ path, size: 1, sha256: h.repeat(64) })
    const local = [f("a", "1"), f("b", "2")]
    const remote = [f("b", "3"), f("c", "4")]
    expect(FilesDiffCalculator.diff(local, remote).counts).toStrictEqual({
      added: 1,
      modified: 1,
      removed: 1,
      unchanged: 0
    })
    expect(manifestChecksum(local)).toBe(manifestChecksum([...local].reverse()))
    expect(manifestChecksum(local)).not.toBe(manifestChecksum(remote))
  })
})
