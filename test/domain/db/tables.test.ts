import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import { ExportLine, exportProblems } from "../../../src/domain/db/exportLines.js"
import { applyImport, planImport, type TargetState } from "../../../src/domain/db/importPlan.js"
import {
  type ContextExport,
  canonicalTimestamp,
  compareIds,
  DatabaseExport,
  rowDigest,
  type SkillExport,
  sameInstant,
  sameRow,
  Timestamp,
  type UserExport
} from "../../../src/domain/db/tables.js"
import { canonicalJson } from "../../../src/domain/hash.js"
import { JsonObject } from "../../../src/domain/model.js"

// Small pools so that collisions (taken names, missing users, missing sessions) actually happen.
const id = fc.constantFrom("a", "b", "c", "d", "e", "f")
const name = fc.constantFrom("ann", "bob", "cy", "dee")
const ts = Arbitrary.make(Timestamp)
const texts = fc.array(fc.constantFrom("x", "y", "z"), { maxLength: 2 })

const user: fc.Arbitrary<UserExport> = fc.record({
  id,
  name,
  email: name.map((n) => `${n}@example.com`),
  display_name: fc.constantFrom("", "A"),
  roles: texts,
  created_at: ts,
  updated_at: fc.constantFrom("2025-01-01T00:00:00.000000Z", "2025-01-02T00:00:00.000000Z")
})
const skill: fc.Arbitrary<SkillExport> = fc.record({
  id,
  name,
  description: fc.constantFrom("d1", "d2"),
  enabled: fc.boolean(),
  tags: texts,
  category: fc.constantFrom("c"),
  assigned_agents: texts,
  instructions: fc.constantFrom("i"),
  form: fc.constantFrom("folder", "file"),
  mode: fc.constantFrom(0o644 as const, 0o755 as const),
  original: fc.constantFrom(null, "---\nname: x\n---\n\n"),
  // Equal as values in either key order: an import compares extra as jsonb.
  extra: fc.constantFrom({}, { license: "MIT" }, { a: 1, b: [true] }, { b: [true], a: 1 }),
  version_hash: fc.constantFrom("h1", "h2"),
  created_at: ts,
  updated_at: ts
})
const context: fc.Arbitrary<ContextExport> = fc.record({
  id,
  user_id: id,
  session_id: fc.option(fc.constantFrom("s1", "s2"), { nil: null }),
  name,
  data: fc.constantFrom({}, { a: 1 }, { a: [1, "x"] }, { b: null }),
  created_at: ts,
  updated_at: ts
})
const uniqueBy = <A>(arb: fc.Arbitrary<A>, keys: Array<(a: A) => string>) =>
  fc.uniqueArray(arb, { maxLength: 6, comparator: (a, b) => keys.some((k) => k(a) === k(b)) })
const users = uniqueBy(user, [(u) => u.id, (u) => u.name, (u) => u.email])
const skills = uniqueBy(skill, [(s) => s.id])
const contexts = uniqueBy(context, [(c) => c.id])
const target: fc.Arbitrary<TargetState> = fc.record({
  users,
  skills,
  contexts,
  sessionIds: fc.subarray(["s1", "s2"])
})
const source = fc.record({ users, skills, contexts })

describe("planImport", () => {
  it.prop("classifies every incoming row exactly once", [target, source], ([t, s]) => {
    const plan = planImport(t, s)
    for (const table of ["users", "skills", "contexts"] as const) {
      const p = plan[table]
      const all = [...p.inserted, ...p.updated, ...p.unchanged, ...p.skipped.map((x) => x.id)].sort()
      expect(all).toEqual(s[table].map((r) => r.id).sort())
    }
  })

  it.prop(
    "an import converges: reruns reach a state that a further run leaves alone, skipping the same rows",
    [target, source],
    ([t, s]) => {
      // A name or email freed by an update is only taken on a later run, so a rerun may still write; it converges.
      let state = t
      let plan = planImport(state, s)
      for (let run = 0; run <= s.users.length + 1; run++) {
        state = applyImport(state, s, plan)
        plan = planImport(state, s)
      }
      for (const table of ["users", "skills", "contexts"] as const) {
        expect(plan[table].inserted).toEqual([])
        expect(plan[table].updated).toEqual([])
      }
      expect(applyImport(state, s, plan)).toEqual(state)
    }
  )

  it.prop("a rerun writes nothing when no user was skipped", [target, source], ([t, s]) => {
    const plan = planImport(t, s)
    fc.pre(plan.users.skipped.length === 0)
    const again = planImport(applyImport(t, s, plan), s)
    for (const table of ["users", "skills", "contexts"] as const) {
      expect(again[table].inserted).toEqual([])
      expect(again[table].updated).toEqual([])
    }
  })

  it.prop("created_at of an existing row is never overwritten", [target, source], ([t, s]) => {
    const after = applyImport(t, s, planImport(t, s))
    for (const table of ["users", "skills", "contexts"] as const) {
      const before = new Map<string, string>(t[table].map((r) => [r.id, r.created_at]))
      for (const row of after[table]) {
        const was = before.get(row.id)
        if (was !== undefined) expect(row.created_at).toBe(was)
      }
    }
  })

  it.prop(
    "a user is skipped exactly when its name or email belongs to another id on the target",
    [target, users],
    ([t, us]) => {
      const plan = planImport(t, { users: us, skills: [], contexts: [] })
      const skipped = new Set(plan.users.skipped.map((x) => x.id))
      for (const u of us) {
        const taken = t.users.some((o) => o.id !== u.id && (o.name === u.name || o.email === u.email))
        expect(skipped.has(u.id)).toBe(taken)
      }
      // What is written never breaks the unique name/email constraints.
      const after = applyImport(t, { users: us, skills: [], contexts: [] }, plan)
      expect(new Set(after.users.map((u) => u.name)).size).toBe(after.users.length)
      expect(new Set(after.users.map((u) => u.email)).size).toBe(after.users.length)
    }
  )

  it.prop(
    "a context is skipped exactly when its user is neither on the target nor imported",
    [target, source],
    ([t, s]) => {
      const plan = planImport(t, s)
      const importedUsers = new Set([...plan.users.inserted, ...plan.users.updated, ...plan.users.unchanged])
      const skipped = new Map(plan.contexts.skipped.map((x) => [x.id, x.reason]))
      for (const c of s.contexts) {
        const present = t.users.some((u) => u.id === c.user_id) || importedUsers.has(c.user_id)
        expect(skipped.has(c.id)).toBe(!present)
        if (!present) expect(skipped.get(c.id)).toContain(c.user_id)
      }
    }
  )

  it.prop("a context whose session is missing keeps its row with the session cleared", [target, source], ([t, s]) => {
    const plan = planImport(t, s)
    const after = applyImport(t, s, plan)
    const cleared = new Set(plan.contexts.sessionCleared)
    const written = new Set([...plan.contexts.inserted, ...plan.contexts.updated])
    for (const c of s.contexts) {
      if (!written.has(c.id)) continue
      const row = after.contexts.find((x) => x.id === c.id)!
      const missing = c.session_id !== null && !t.sessionIds.includes(c.session_id)
      expect(cleared.has(c.id)).toBe(missing)
      expect(row.session_id).toBe(missing ? null : c.session_id)
    }
  })

  it("decides a rename chain against the target as it stands: a name or email the import frees is not taken in the same run", () => {
    const u = (id: string, name: string, email: string): UserExport => ({
      id,
      name,
      email,
      display_name: "",
      roles: [],
      created_at: "2025-01-01T00:00:00.000000Z",
      updated_at: "2025-01-01T00:00:00.000000Z"
    })
    const target: TargetState = { users: [u("a", "ann", "ann@x")], skills: [], contexts: [], sessionIds: [] }
    const source = {
      users: [u("a", "bob", "cy@x"), u("d", "ann", "bob@x"), u("é", "cy", "ann@x")],
      skills: [],
      contexts: []
    }
    const plan = planImport(target, source)
    expect(plan.users).toEqual({
      inserted: [],
      updated: ["a"],
      unchanged: [],
      skipped: [
        { id: "d", reason: "name belongs to user a" },
        { id: "é", reason: "email belongs to user a" }
      ],
      sessionCleared: []
    })
    const after = applyImport(target, source, plan)
    expect(after.users).toEqual([u("a", "bob", "cy@x")])
    // The next run finds ann and ann@x free and takes them.
    expect(planImport(after, source).users).toMatchObject({ inserted: ["d", "é"], unchanged: ["a"], skipped: [] })
  })

  it("reports the owner of a taken email", () => {
    const u = (id: string, email: string): UserExport => ({
      id,
      name: id,
      email,
      display_name: "",
      roles: [],
      created_at: "2025-01-01T00:00:00Z",
      updated_at: "2025-01-01T00:00:00Z"
    })
    const plan = planImport(
      { users: [u("u1", "x@y")], skills: [], contexts: [], sessionIds: [] },
      { users: [u("u2", "x@y")], skills: [], contexts: [] }
    )
    expect(plan.users.skipped).toEqual([{ id: "u2", reason: "email belongs to user u1" }])
  })
})

describe("export schema", () => {
  it.prop(
    "DatabaseExport round-trips through JSON",
    [Arbitrary.make(DatabaseExport)],
    ([e]) => {
      const encoded = JSON.parse(JSON.stringify(Schema.encodeSync(DatabaseExport)(e)))
      // Compared as canonical JSON: JSON itself has no -0, so 0 and -0 are the same document.
      expect(canonicalJson(Schema.decodeUnknownSync(DatabaseExport)(encoded))).toEqual(canonicalJson(e))
    },
    { fastCheck: { numRuns: 30 } }
  )

  it("rejects NUL characters and malformed timestamps, naming the field", () => {
    const bad = {
      kind: "users",
      row: {
        id: "u1",
        name: "a\u0000",
        email: "e",
        display_name: "",
        roles: [],
        created_at: "2025-01-01T00:00:00Z",
        updated_at: "yesterday"
      }
    }
    const r = Schema.decodeUnknownEither(ExportLine, { errors: "all" })(bad)
    expect(r._tag).toBe("Left")
    if (r._tag === "Left") {
      expect(r.left.message).toContain("name")
      expect(r.left.message).toContain("updated_at")
    }
  })

  it("finds duplicate ids, names and emails with the offending ids", () => {
    const u = (id: string, name: string, email: string): UserExport => ({
      id,
      name,
      email,
      display_name: "",
      roles: [],
      created_at: "2025-01-01T00:00:00Z",
      updated_at: "2025-01-01T00:00:00Z"
    })
    const problems = exportProblems({
      users: [u("a", "n", "e1"), u("b", "n", "e2"), u("a", "m", "e3")],
      skills: [],
      contexts: []
    })
    expect(problems.map((p) => [p.id, p.reason])).toEqual([
      ["b", "name also used by user a"],
      ["a", "duplicate users id"]
    ])
  })
})

describe("timestamps and digests", () => {
  it.prop(
    "canonicalTimestamp keeps the instant",
    [fc.integer({ min: 0, max: 4_000_000_000_000 }), fc.integer({ min: 0, max: 999 })],
    ([ms, us]) => {
      const iso = new Date(ms).toISOString().replace("Z", `${String(us).padStart(3, "0")}Z`)
      const withOffset =
        new Date(ms + 3_600_000).toISOString().slice(0, 19) +
        `.${String(ms % 1000).padStart(3, "0")}${String(us).padStart(3, "0")}+01:00`
      expect(sameInstant(iso, withOffset)).toBe(true)
      expect(canonicalTimestamp(withOffset)).toBe(canonicalTimestamp(iso))
    }
  )

  it.prop("rowDigest agrees with sameRow and ignores created_at", [context, context], ([a, b]) => {
    const b2 = { ...b, created_at: a.created_at }
    expect(rowDigest("contexts", a) === rowDigest("contexts", b2)).toBe(sameRow.contexts(a, b2))
    expect(rowDigest("contexts", { ...a, created_at: "2001-01-01T00:00:00Z" })).toBe(rowDigest("contexts", a))
  })

  it.prop(
    "compareIds is code-point order",
    [fc.string({ unit: "binary" }), fc.string({ unit: "binary" })],
    ([a, b]) => {
      const cp = (s: string) => [...s].map((c) => c.codePointAt(0)!)
      const x = cp(a)
      const y = cp(b)
      let expected = 0
      for (let i = 0; i < Math.min(x.length, y.length) && expected === 0; i++) expected = Math.sign(x[i]! - y[i]!)
      if (expected === 0) expected = Math.sign(x.length - y.length)
      expect(compareIds(a, b)).toBe(expected)
    }
  )
})

describe("keys of free-form objects", () => {
  it("refuse __proto__, which an object would take as its prototype rather than keep (it would not round-trip)", () => {
    const skillExtra = JSON.parse('{"__proto__": {"x": 1}}')
    expect(Object.keys(skillExtra)).toEqual(["__proto__"])
    // As an import decodes a line: a key the schema does not take is an error, never dropped.
    const decoded = Schema.decodeUnknownEither(JsonObject, { onExcessProperty: "error" })(skillExtra)
    expect(decoded._tag).toBe("Left")
    expect(String(decoded._tag === "Left" && decoded.left.message)).toContain("__proto__")
  })

  it.prop(
    "DatabaseExport round-trips through JSON, on the seed that found a skill whose extra held __proto__",
    [Arbitrary.make(DatabaseExport)],
    ([e]) => {
      const encoded = JSON.parse(JSON.stringify(Schema.encodeSync(DatabaseExport)(e)))
      expect(canonicalJson(Schema.decodeUnknownSync(DatabaseExport)(encoded))).toEqual(canonicalJson(e))
    },
    { fastCheck: { numRuns: 30, seed: 1255171261 } }
  )
})
