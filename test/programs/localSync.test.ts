// Local sync on the real PostgreSQL: round trips, no-op runs, dry runs, orphans, malformed and hostile input, access rules.
import { createHash } from "node:crypto"
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { AccessRuleKeyed, AgentKeyed, ContentKeyed, diffKeyed, SkillKeyed } from "../../src/domain/diff.js"
import { parseAccessRules } from "../../src/domain/formats.js"
import type { LocalSyncResult } from "../../src/domain/model.js"
import { LocalSync, type LocalSyncOptions, type LocalSyncPorts } from "../../src/programs/localSync.js"
import * as Repos from "../../src/services/repos/index.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { readTree, tempDirs, walk } from "../support/tree.js"

const EXAMPLE = join(import.meta.dirname, "../../examples/project/services")

const tempDir = tempDirs("ls")

/** The one row a statement must return. */
const firstRow = <R extends object = Record<string, unknown>>(
  url: string,
  text: string,
  params: ReadonlyArray<unknown> = []
) =>
  Effect.flatMap(sqlRows<R>(url, text, params), ([row]) =>
    row === undefined ? Effect.dieMessage(`no row from: ${text}`) : Effect.succeed(row)
  )

/** A small tree with every kind, used when examples/project is not there. */
const writeFixture = (root: string) => {
  const put = (path: string, text: string) => {
    mkdirSync(join(root, path, ".."), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  put(
    "agents/support/config.yaml",
    "id: support\nname: support\ndisplay_name: Support\ndescription: helps\nenabled: true\ntags: [a, b]\nsettings:\n  zeta: 1\n  alpha: { nested: [1, 2] }\n"
  )
  put("agents/support/system_prompt.md", "You help.\n")
  put("skills/search/config.yaml", "id: search\nname: search\ndescription: finds\n")
  put("skills/search/SKILL.md", "# Search\n\nFind things.\n")
  put("content/blog/source.yaml", "layout: directory\ndescription: The blog\n")
  put("content/blog/hello/index.md", "---\ntitle: Hello\nslug: hello\npublished_at: 2025-03-01\n---\n\nHello world.\n")
  put("content/docs/intro.md", "---\ntitle: Intro\nslug: intro\ntags: [x]\nimage: null\n---\n\nIntro body.\n")
  put(
    "access-control/config.yaml",
    "rules:\n  - entity_type: agent\n    entity_id: support\n    access: allow\n    roles: [support]\n  - entity_type: agent\n    entity_id: support\n    access: deny\n    roles: [contractor]\n    justification: no\n"
  )
}

/** A copy of examples/project/services (or the fixture) in a temp dir. */
const projectCopy = () => {
  const root = join(tempDir("src"), "services")
  if (existsSync(EXAMPLE)) cpSync(EXAMPLE, root, { recursive: true })
  else writeFixture(root)
  return root
}

const run = <A, E>(url: string, services: string, effect: Effect.Effect<A, E, LocalSync | LocalSyncPorts>) =>
  effect.pipe(
    Effect.provide(
      LocalSync.layer({ servicesPath: services, projectRoot: join(services, ".."), databaseUrl: Redacted.make(url) })
    )
  )

const sync = (url: string, services: string, options: LocalSyncOptions) => run(url, services, LocalSync.sync(options))

const total = (r: { results: ReadonlyArray<{ synced: number; deleted: number }> }) =>
  r.results.reduce((n, x) => n + x.synced + x.deleted, 0)

const byKind = (r: { results: ReadonlyArray<LocalSyncResult> }, kind: string) => r.results.find((x) => x.kind === kind)!

describe("local sync round trip", () => {
  it.scopedLive(
    "disk → database → empty directory reproduces every item, byte for byte where agentsync rendered it; second runs are no-ops",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("ls")
        const src = projectCopy()
        const original = readTree(src)
        expect(original.errors).toEqual([])
        expect(original.contents.length).toBeGreaterThan(0)

        const first = yield* sync(url, src, { direction: "ToDatabase" })
        expect(first.results.every((r) => r.errors.length === 0)).toBe(true)
        // Every item, and every file beside one, is a change of its own.
        const beside = (kind: string) => original.attachments.filter((a) => a.kind === kind).length
        expect(byKind(first, "content").synced).toBe(original.contents.length + beside("content"))
        expect(byKind(first, "agents").synced).toBe(original.agents.length + beside("agents"))
        expect(byKind(first, "skills").synced).toBe(original.skills.length + beside("skills"))
        expect(byKind(first, "acl").synced).toBe(original.accessRules.length)

        const again = yield* sync(url, src, { direction: "ToDatabase" })
        expect(total(again)).toBe(0)
        expect(again.plan).toEqual([])

        const diff = yield* run(url, src, LocalSync.diff())
        for (const k of diff.kinds) expect(k.changes, k.kind).toEqual([])

        const out = join(tempDir("out"), "services")
        const back = yield* sync(url, out, { direction: "ToDisk" })
        expect(total(back)).toBe(
          original.contents.length +
            original.agents.length +
            original.skills.length +
            original.accessRules.length +
            original.attachments.length
        )
        const copy = readTree(out)
        expect(copy.errors).toEqual([])
        const same = <A>(keyed: Parameters<typeof diffKeyed<A>>[0], a: ReadonlyArray<A>, b: ReadonlyArray<A>) => {
          const d = diffKeyed(keyed, a, b)
          expect(d.counts).toEqual({ added: 0, modified: 0, removed: 0, unchanged: a.length })
        }
        same(AgentKeyed, original.agents, copy.agents)
        same(SkillKeyed, original.skills, copy.skills)
        same(ContentKeyed, original.contents, copy.contents)
        same(AccessRuleKeyed, original.accessRules, copy.accessRules)
        expect([...copy.sources].sort()).toEqual([...original.sources].sort())

        // Byte for byte, every file local sync carries: items in the form they were read in, and the files beside them.
        const carried = walk(src).filter((p) => !original.unsynced.includes(p))
        expect(walk(out)).toEqual(carried)
        for (const path of carried)
          expect(readFileSync(join(out, path)).equals(readFileSync(join(src, path))), path).toBe(true)

        const noop = yield* sync(url, out, { direction: "ToDisk" })
        expect(total(noop)).toBe(0)
        expect(noop.plan).toEqual([])
      })
  )
})

describe("local sync behaviour", () => {
  it.scopedLive("a row edited by hand in the database is Modified and flows back to disk", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("ls")
      const src = projectCopy()
      yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
      const row = yield* firstRow<{ source: string; slug: string }>(
        url,
        "SELECT source, slug FROM contents ORDER BY source, slug LIMIT 1"
      )
      yield* sqlRows(url, "UPDATE contents SET title = 'Edited in the database' WHERE source = $1 AND slug = $2", [
        row.source,
        row.slug
      ])
      const plan = yield* sync(url, src, { direction: "ToDisk", kinds: ["content"], dryRun: true })
      expect(plan.plan.map((s) => [s.action, s.key, s.status])).toEqual([
        ["write", `${row.source}/${row.slug}`, "Modified"]
      ])
      const done = yield* sync(url, src, { direction: "ToDisk", kinds: ["content"] })
      expect(done.plan).toEqual(plan.plan)
      const written = readTree(src).contents.find((c) => c.source === row.source && c.slug === row.slug)!
      expect(written.title).toBe("Edited in the database")
      // Equal on both sides now: nothing to do either way.
      expect(total(yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] }))).toBe(0)
      expect(total(yield* sync(url, src, { direction: "ToDisk", kinds: ["content"] }))).toBe(0)
    })
  )

  it.scopedLive(
    "rows remember the bytes of their file: unchanged files skip the parse, any edit on either side still shows",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("ls")
        const src = projectCopy()
        yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
        const paths = walk(src).filter((p) => p.startsWith("content/") && p.endsWith(".md"))
        const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex")
        const rows = yield* sqlRows<{ source: string; slug: string; path: string; file_sha256: string | null }>(
          url,
          "SELECT source, slug, path, file_sha256 FROM contents"
        )
        expect(rows.length).toBe(paths.length)
        // Each row remembers its own file (flat page, bundle, nested folder).
        const files = new Map(rows.map((r) => [`${r.source}/${r.slug}`, `content/${r.source}/${r.path}`]))
        expect([...files.values()].sort()).toEqual(paths)
        const pathOf = (source: string, slug: string) => files.get(`${source}/${slug}`)!
        for (const r of rows)
          expect(r.file_sha256, `${r.source}/${r.slug}`).toBe(sha(join(src, pathOf(r.source, r.slug))))

        // A file edited on disk: new bytes, so it is parsed and Modified.
        const [a, b] = [rows[0]!, rows[1]!]
        const fileA = join(src, pathOf(a.source, a.slug))
        writeFileSync(fileA, readFileSync(fileA, "utf8").replace(/\n*$/, "\n\nOne more line.\n"))
        // A row edited by hand: its file bytes no longer vouch for it.
        yield* sqlRows(url, "UPDATE contents SET author = 'someone else' WHERE source = $1 AND slug = $2", [
          b.source,
          b.slug
        ])
        const edited = yield* firstRow(
          url,
          "SELECT version_hash, file_sha256 FROM contents WHERE source = $1 AND slug = $2",
          [b.source, b.slug]
        )
        expect(edited).toEqual({ version_hash: "", file_sha256: null })
        const d = yield* run(url, src, LocalSync.diff(["content"]))
        expect(d.kinds[0]!.changes).toEqual(
          [
            { key: `${a.source}/${a.slug}`, status: "Modified" },
            { key: `${b.source}/${b.slug}`, status: "Modified" }
          ].sort((x, y) => (x.key < y.key ? -1 : 1))
        )
        const r = yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
        expect(byKind(r, "content").synced).toBe(2)
        const restored = yield* firstRow(
          url,
          "SELECT author, file_sha256 FROM contents WHERE source = $1 AND slug = $2",
          [b.source, b.slug]
        )
        expect(restored.file_sha256).toBe(sha(join(src, pathOf(b.source, b.slug))))
        expect(restored.author).not.toBe("someone else")

        // Written to disk: the rows learn the bytes just written.
        yield* sqlRows(url, "UPDATE contents SET file_sha256 = NULL")
        const out = join(tempDir("sha"), "services")
        yield* sync(url, out, { direction: "ToDisk", kinds: ["content"] })
        for (const row of yield* sqlRows<{ source: string; slug: string; file_sha256: string | null }>(
          url,
          "SELECT source, slug, file_sha256 FROM contents"
        )) {
          expect(row.file_sha256).toBe(sha(join(out, pathOf(row.source, row.slug))))
        }
      })
  )

  it.scopedLive("dry run writes nothing on either side and prints the plan a real run executes", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("ls")
      const src = projectCopy()
      const dry = yield* sync(url, src, { direction: "ToDatabase", dryRun: true })
      expect(dry.dry_run).toBe(true)
      expect(dry.plan.length).toBeGreaterThan(0)
      const { n } = yield* firstRow(
        url,
        "SELECT (SELECT count(*) FROM contents) + (SELECT count(*) FROM agents) + (SELECT count(*) FROM access_rules) AS n"
      )
      expect(Number(n)).toBe(0)
      const real = yield* sync(url, src, { direction: "ToDatabase" })
      expect(real.plan).toEqual(dry.plan)
      expect(real.results.map((r) => ({ ...r, dry_run: true }))).toEqual(dry.results.map((r) => ({ ...r })))

      const out = join(tempDir("dry"), "services")
      const dryDisk = yield* sync(url, out, { direction: "ToDisk", dryRun: true })
      expect(existsSync(out)).toBe(false)
      const realDisk = yield* sync(url, out, { direction: "ToDisk" })
      expect(realDisk.plan).toEqual(dryDisk.plan)
      expect(walk(out).length).toBeGreaterThan(0)
    })
  )

  it.scopedLive("orphans are kept unless --delete-orphans, in both directions", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("ls")
      const src = projectCopy()
      yield* sync(url, src, { direction: "ToDatabase" })
      const victim = readTree(src).contents[0]!
      const victimPath = walk(src).find(
        (p) => p.startsWith(`content/${victim.source}/${victim.slug}`) && p.endsWith(".md")
      )!
      rmSync(join(src, victimPath))
      const kept = yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
      expect(byKind(kept, "content").deleted).toBe(0)
      expect(byKind(kept, "content").skipped).toBeGreaterThan(0)
      // The database still has it: writing to disk brings it back, at its layout.
      const restored = yield* sync(url, src, { direction: "ToDisk", kinds: ["content"] })
      expect(restored.plan).toEqual([
        {
          kind: "content",
          action: "write",
          key: `${victim.source}/${victim.slug}`,
          status: "Added",
          paths: [victimPath]
        }
      ])
      expect(existsSync(join(src, victimPath))).toBe(true)

      rmSync(join(src, victimPath))
      const gone = yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"], deleteOrphans: true })
      expect(byKind(gone, "content").deleted).toBe(1)
      const rows = yield* sqlRows(url, "SELECT 1 FROM contents WHERE source = $1 AND slug = $2", [
        victim.source,
        victim.slug
      ])
      expect(rows).toEqual([])

      // A file with no row goes from disk only with --delete-orphans.
      const other = readTree(src).agents[0]!
      yield* sqlRows(url, "DELETE FROM agents WHERE id = $1", [other.id])
      expect(byKind(yield* sync(url, src, { direction: "ToDisk", kinds: ["agents"] }), "agents").deleted).toBe(0)
      expect(existsSync(join(src, "agents", other.id, "config.yaml"))).toBe(true)
      const removed = yield* sync(url, src, { direction: "ToDisk", kinds: ["agents"], deleteOrphans: true })
      expect(byKind(removed, "agents").deleted).toBe(1)
      expect(existsSync(join(src, "agents", other.id))).toBe(false)
    })
  )

  it.scopedLive(
    "a malformed file is reported file:line and skipped; the others sync and its row is never touched",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("ls")
        const src = projectCopy()
        yield* sync(url, src, { direction: "ToDatabase" })
        const agent = readTree(src).agents[0]!
        const before = yield* sqlRows(url, "SELECT version_hash FROM agents WHERE id = $1", [agent.id])
        writeFileSync(join(src, "agents", agent.id, "config.yaml"), `id: ${agent.id}\nname: x\nenabled: maybe\n`)
        const item = readTree(src).contents[0]!
        const itemPath = walk(src).find(
          (p) => p.startsWith(`content/${item.source}/${item.slug}`) && p.endsWith(".md")
        )!
        writeFileSync(join(src, itemPath), "---\ntitle: [unclosed\n---\nbody\n")
        // And a good change beside them.
        const skill = readTree(src).skills[0]!
        writeFileSync(join(src, "skills", skill.id, "SKILL.md"), "new instructions\n")

        const r = yield* sync(url, src, { direction: "ToDatabase", deleteOrphans: true })
        const agentErrors = byKind(r, "agents").errors
        expect(agentErrors).toHaveLength(1)
        expect(agentErrors[0]!.message).toMatch(new RegExp(`agents/${agent.id}/config\\.yaml:3: `))
        expect(byKind(r, "content").errors[0]!.message).toMatch(
          new RegExp(`${itemPath.replace(/[.]/g, "\\.")}:\\d+: invalid YAML`)
        )
        expect(byKind(r, "skills").synced).toBe(1)
        expect(byKind(r, "agents").deleted).toBe(0)
        expect(byKind(r, "content").deleted).toBe(0)
        expect(yield* sqlRows(url, "SELECT version_hash FROM agents WHERE id = $1", [agent.id])).toEqual(before)
        expect(
          yield* sqlRows(url, "SELECT 1 FROM contents WHERE source = $1 AND slug = $2", [item.source, item.slug])
        ).toHaveLength(1)
        const s = yield* firstRow(url, "SELECT instructions FROM skills WHERE id = $1", [skill.id])
        expect(s.instructions).toBe("new instructions\n")

        // To disk, the malformed files are left as they are.
        const back = yield* sync(url, src, { direction: "ToDisk", deleteOrphans: true })
        expect(back.plan.filter((p) => p.key === agent.id || p.key === `${item.source}/${item.slug}`)).toEqual([])
        expect(readFileSync(join(src, itemPath), "utf8")).toBe("---\ntitle: [unclosed\n---\nbody\n")
      })
  )

  it.scopedLive("a hostile row is reported and never written outside the tree", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("ls")
      const src = projectCopy()
      yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
      yield* sqlRows(
        url,
        `INSERT INTO contents (source, slug, title, kind, description, author, keywords, public, tags, body, version_hash)
       VALUES ('..', 'escape', 't', 'article', '', '', '{}', true, '{}', 'x', 'h'), ('docs', '../../../evil', 't', 'article', '', '', '{}', true, '{}', 'x', 'h')`
      )
      const out = join(tempDir("hostile"), "services")
      const r = yield* sync(url, out, { direction: "ToDisk", kinds: ["content"] })
      expect(
        byKind(r, "content")
          .errors.map((e) => e.item)
          .sort()
      ).toEqual(["database contents ../escape", "database contents docs/../../../evil"])
      expect(walk(join(out, "..")).every((p) => p.startsWith("services/content/"))).toBe(true)
    })
  )
})

describe("access rules", () => {
  it.scopedLive("the file's role rules replace the stored ones per entity, user rules stay, deny wins", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("ls")
      const src = join(tempDir("acl"), "services")
      const rulesFile = join(src, "access-control", "config.yaml")
      mkdirSync(join(src, "access-control"), { recursive: true })
      writeFileSync(
        rulesFile,
        `rules:
  - { entity_type: agent, entity_id: support, access: allow, roles: [support, contractor] }
  - { entity_type: agent, entity_id: support, access: deny, roles: [contractor] }
  - { entity_type: skill, entity_id: search, access: allow, roles: [staff] }
`
      )
      yield* sync(url, src, { direction: "ToDatabase", kinds: ["acl"] })
      yield* sqlRows(url, "INSERT INTO users (id, name, email) VALUES ('u1', 'ada', 'ada@example.com')")
      yield* sqlRows(
        url,
        "INSERT INTO user_access_rules (entity_type, entity_id, user_id, access) VALUES ('agent', 'support', 'u1', 'deny')"
      )

      const check = (entityType: "agent" | "skill", id: string, roles: Array<string>, userId?: string) =>
        run(
          url,
          src,
          Effect.flatMap(Repos.AccessRulesRepo, (r) =>
            r.check(entityType, id, userId === undefined ? { roles } : { roles, userId })
          )
        )
      expect(yield* check("agent", "support", ["support"])).toBe("allow")
      expect(yield* check("agent", "support", ["contractor"])).toBe("deny")
      expect(yield* check("agent", "support", ["support"], "u1")).toBe("deny")
      expect(yield* check("agent", "other", ["support"])).toBe("none")

      // The file now declares only an allow for support: the stored deny of that entity goes; skill/search stays.
      writeFileSync(
        rulesFile,
        "rules:\n  - { entity_type: agent, entity_id: support, access: allow, roles: [support] }\n"
      )
      const r = yield* sync(url, src, { direction: "ToDatabase", kinds: ["acl"] })
      expect(r.plan.map((s) => [s.action, s.key, s.status])).toEqual([
        ["delete", "agent:support:deny", "Removed"],
        ["upsert", "agent:support:allow", "Modified"]
      ])
      expect(byKind(r, "acl").skipped).toBe(1)
      const stored = yield* sqlRows(url, "SELECT entity_type, entity_id, access FROM access_rules ORDER BY 1, 2, 3")
      expect(stored).toEqual([
        { entity_type: "agent", entity_id: "support", access: "allow" },
        { entity_type: "skill", entity_id: "search", access: "allow" }
      ])
      expect(yield* sqlRows(url, "SELECT user_id, access FROM user_access_rules")).toEqual([
        { user_id: "u1", access: "deny" }
      ])
      expect(yield* check("agent", "support", ["contractor"])).toBe("none")
      expect(yield* check("agent", "support", ["support"], "u1")).toBe("deny")

      const orphaned = yield* sync(url, src, { direction: "ToDatabase", kinds: ["acl"], deleteOrphans: true })
      expect(orphaned.plan.map((s) => [s.action, s.key])).toEqual([["delete", "skill:search:allow"]])

      // To disk: the database's rules are written back in the file's format.
      rmSync(rulesFile)
      yield* sync(url, src, { direction: "ToDisk", kinds: ["acl"] })
      const back = parseAccessRules({ path: rulesFile, text: readFileSync(rulesFile, "utf8") })
      expect(Either.getOrThrow(back).map(AccessRuleKeyed.key)).toEqual(["agent:support:allow"])
    })
  )

  it.scopedLive("a malformed rules file changes nothing and is reported", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("ls")
      const src = join(tempDir("acl"), "services")
      mkdirSync(join(src, "access-control"), { recursive: true })
      writeFileSync(
        join(src, "access-control", "config.yaml"),
        "rules:\n  - { entity_type: agent, entity_id: a, access: allow, roles: [x] }\n"
      )
      yield* sync(url, src, { direction: "ToDatabase", kinds: ["acl"] })
      writeFileSync(
        join(src, "access-control", "config.yaml"),
        "rules:\n  - entity_type: agent\n    entity_id: a\n    access: maybe\n    roles: [x]\n"
      )
      const r = yield* sync(url, src, { direction: "ToDatabase", kinds: ["acl"], deleteOrphans: true })
      expect(byKind(r, "acl").errors[0]!.message).toMatch(/access-control\/config\.yaml:4: /)
      expect(r.plan).toEqual([])
      expect(yield* sqlRows(url, "SELECT access FROM access_rules")).toEqual([{ access: "allow" }])
    })
  )
})
