import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import {
  type PlanOptions,
  planSync,
  planUnit,
  type Side,
  type SkillAction,
  sameSide,
  sideHash,
  type UnitState
} from "../../../src/domain/skills/planner.js"

const H1 = "1".repeat(64)
const H2 = "2".repeat(64)
const H3 = "3".repeat(64)

// A tiny universe of contents, so that "the same bytes on both sides" happens as often as "different".
const Hash = Schema.Literal(H1, H2, H3)
const SideSchema = Schema.UndefinedOr(
  Schema.Struct({
    "SKILL.md": Schema.optionalWith(Hash, { exact: true }),
    "ref.md": Schema.optionalWith(Hash, { exact: true })
  })
)
const ToolSchema = Schema.Struct({ base: SideSchema, home: SideSchema })
const Input = Schema.Struct({
  repo: SideSchema,
  readOnly: Schema.Boolean,
  tools: Schema.Array(ToolSchema).pipe(Schema.minItems(1), Schema.maxItems(3))
})
const Options = Schema.Struct({
  prefer: Schema.UndefinedOr(Schema.Literal("home", "repo")),
  delete: Schema.Boolean,
  toHome: Schema.Boolean,
  toRepo: Schema.Boolean
})

const toState = (i: typeof Input.Type): UnitState => ({
  source: "s",
  unit: "skills/x",
  readOnly: i.readOnly,
  repo: i.repo as Side,
  tools: i.tools.map((t, n) => ({ tool: `t${n}`, base: t.base as Side, home: t.home as Side }))
})

/** What the executors do, on plain values: write the target side, record the lock. */
const applyPlan = (s: UnitState, actions: ReadonlyArray<SkillAction>): UnitState => {
  let repo = s.repo
  for (const a of actions) if (a.direction === "ToRepo") repo = a.content
  return {
    ...s,
    repo,
    tools: s.tools.map((t) => {
      const a = actions.find((x) => x.tool === t.tool)!
      const home = a.direction === "ToHome" ? a.content : t.home
      const base = a.lock === "keep" ? t.base : a.lock === "drop" ? undefined : a.content
      return { tool: t.tool, base, home }
    })
  }
}

const present = (s: Side) => s !== undefined && Object.keys(s).length > 0
const paths = (a: Side, b: Side) => new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])
/** Writing `target` over `side` keeps every file the side changed from its base (or already holds the target's). */
const keepsEdits = (side: Side, base: Side, target: Side) =>
  [...paths(side, base)].every((p) => side?.[p] === base?.[p] || side?.[p] === target?.[p])
const sameState = (a: UnitState, b: UnitState) =>
  sameSide(a.repo, b.repo) &&
  a.tools.every(
    (t, i) =>
      sameSide(t.home, b.tools[i]!.home) &&
      sameSide(t.base, b.tools[i]!.base) &&
      present(t.base) === present(b.tools[i]!.base)
  )

const arbInput = Arbitrary.make(Input)
const arbOptions = Arbitrary.make(Options)

describe("skill planner laws", () => {
  it("applying a plan then planning again gives only NoOp (and the conflicts that were already there)", () => {
    fc.assert(
      fc.property(arbInput, arbOptions, (input, options) => {
        const state = toState(input)
        const plan = planUnit(state, options)
        const after = applyPlan(state, plan)
        const again = planUnit(after, options)
        const conflictsBefore = new Set(plan.filter((a) => a.direction === "Conflict").map((a) => a.tool))
        for (const a of again) {
          if (a.direction === "Conflict") expect(conflictsBefore.has(a.tool)).toBe(true)
          else expect(a.direction).toBe("NoOp")
        }
        if (conflictsBefore.size === 0) expect(again.every((a) => a.direction === "NoOp")).toBe(true)
        // And the second plan is a fixpoint: applying it changes nothing, lock included.
        expect(sameState(applyPlan(after, again), after)).toBe(true)
      }),
      { numRuns: 5000 }
    )
  })

  it("never writes over a file edited since the base unless --prefer chose it (finishing a half-written side loses nothing)", () => {
    fc.assert(
      fc.property(arbInput, arbOptions, (input, options) => {
        const state = toState(input)
        for (const a of planUnit(state, options)) {
          const t = state.tools.find((x) => x.tool === a.tool)!
          if (a.direction === "ToHome") {
            expect(keepsEdits(t.home, t.base, a.content) || options.prefer === "repo").toBe(true)
            if (!present(a.content)) expect(options.delete).toBe(true)
            if (options.toHome || options.toRepo) expect(options.toHome).toBe(true)
          }
          if (a.direction === "ToRepo") {
            expect(state.readOnly).toBe(false)
            expect(keepsEdits(state.repo, t.base, a.content) || options.prefer === "home").toBe(true)
            if (!present(a.content)) expect(options.delete).toBe(true)
            if (options.toHome || options.toRepo) expect(options.toRepo).toBe(true)
          }
        }
      }),
      { numRuns: 5000 }
    )
  })

  it("without --prefer, every file edited since the base keeps its edit", () => {
    fc.assert(
      fc.property(arbInput, arbOptions, (input, options) => {
        const state = toState(input)
        const after = applyPlan(state, planUnit(state, { ...options, prefer: undefined }))
        state.tools.forEach((t, i) => {
          for (const p of paths(t.home, t.base))
            if (t.home?.[p] !== t.base?.[p]) expect(after.tools[i]!.home?.[p]).toBe(t.home?.[p])
        })
        // The repo's edits, against every tool's base (the repo has no base of its own).
        for (const p of paths(state.repo, undefined)) {
          if (state.tools.every((t) => state.repo?.[p] !== t.base?.[p])) expect(after.repo?.[p]).toBe(state.repo?.[p])
        }
      }),
      { numRuns: 3000 }
    )
  })

  it("a conflict never writes and stands between two different contents", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const state = toState(input)
        for (const a of planUnit(state, {})) {
          if (a.direction !== "Conflict") continue
          expect(a.lock).toBe("keep")
          expect(a.reason.length).toBeGreaterThan(0)
          // Home against repo, or (between tools) this home against another tool's home.
          const rival =
            sideHash(a.home) !== sideHash(a.repo) || state.tools.some((t) => sideHash(t.home) !== sideHash(a.home))
          expect(rival).toBe(true)
        }
      }),
      { numRuns: 2000 }
    )
  })
})

const f = (h: string): Side => ({ "SKILL.md": h })
const one = (base: Side, home: Side, repo: Side, o: PlanOptions = {}, readOnly = false) =>
  planUnit({ source: "s", unit: "skills/x", readOnly, repo, tools: [{ tool: "claude", base, home }] }, o)[0]!

describe("skill planner cases", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly base: Side
    readonly home: Side
    readonly repo: Side
    readonly o?: PlanOptions
    readonly readOnly?: boolean
    readonly direction: SkillAction["direction"]
    readonly lock?: SkillAction["lock"]
    readonly reason: RegExp
  }> = [
    { name: "in sync", base: f(H1), home: f(H1), repo: f(H1), direction: "NoOp", lock: "keep", reason: /in sync/ },
    {
      name: "home edited",
      base: f(H1),
      home: f(H2),
      repo: f(H1),
      direction: "ToRepo",
      reason: /home changed: SKILL.md/
    },
    {
      name: "repo edited",
      base: f(H1),
      home: f(H1),
      repo: f(H2),
      direction: "ToHome",
      reason: /repo changed: SKILL.md/
    },
    {
      name: "both to the same bytes: base refreshed",
      base: f(H1),
      home: f(H2),
      repo: f(H2),
      direction: "NoOp",
      lock: "set",
      reason: /same content/
    },
    { name: "both differently", base: f(H1), home: f(H2), repo: f(H3), direction: "Conflict", reason: /both changed/ },
    {
      name: "both differently, --prefer home",
      base: f(H1),
      home: f(H2),
      repo: f(H3),
      o: { prefer: "home" },
      direction: "ToRepo",
      reason: /--prefer home/
    },
    {
      name: "both differently, --prefer repo",
      base: f(H1),
      home: f(H2),
      repo: f(H3),
      o: { prefer: "repo" },
      direction: "ToHome",
      reason: /--prefer repo/
    },
    {
      name: "only in the repo, no base",
      base: undefined,
      home: undefined,
      repo: f(H1),
      direction: "ToHome",
      reason: /new in the repo/
    },
    {
      name: "only in the home, no base",
      base: undefined,
      home: f(H1),
      repo: undefined,
      direction: "ToRepo",
      reason: /new in the home/
    },
    {
      name: "first adoption, equal",
      base: undefined,
      home: f(H1),
      repo: f(H1),
      direction: "NoOp",
      lock: "set",
      reason: /first adoption/
    },
    {
      name: "first adoption, different",
      base: undefined,
      home: f(H1),
      repo: f(H2),
      direction: "Conflict",
      reason: /no recorded base/
    },
    {
      name: "deleted in home, repo unchanged",
      base: f(H1),
      home: undefined,
      repo: f(H1),
      direction: "NoOp",
      reason: /add --delete/
    },
    {
      name: "deleted in home, --delete",
      base: f(H1),
      home: undefined,
      repo: f(H1),
      o: { delete: true },
      direction: "ToRepo",
      lock: "drop",
      reason: /deleted in the home/
    },
    {
      name: "deleted in repo, home unchanged",
      base: f(H1),
      home: f(H1),
      repo: undefined,
      direction: "NoOp",
      reason: /add --delete/
    },
    {
      name: "deleted in repo, --delete",
      base: f(H1),
      home: f(H1),
      repo: undefined,
      o: { delete: true },
      direction: "ToHome",
      lock: "drop",
      reason: /deleted in the repo/
    },
    {
      name: "deleted in home, edited in repo",
      base: f(H1),
      home: undefined,
      repo: f(H2),
      direction: "Conflict",
      reason: /deleted in the home, changed in the repo/
    },
    {
      name: "deleted on both sides",
      base: f(H1),
      home: undefined,
      repo: undefined,
      direction: "NoOp",
      lock: "drop",
      reason: /deleted on both/
    },
    {
      name: "read-only source never receives ToRepo",
      base: f(H1),
      home: f(H2),
      repo: f(H1),
      readOnly: true,
      direction: "NoOp",
      reason: /read-only/
    },
    {
      name: "read-only, --prefer home keeps the home",
      base: f(H1),
      home: f(H2),
      repo: f(H3),
      readOnly: true,
      o: { prefer: "home" },
      direction: "NoOp",
      reason: /read-only/
    },
    {
      name: "--to-home skips a ToRepo",
      base: f(H1),
      home: f(H2),
      repo: f(H1),
      o: { toHome: true },
      direction: "NoOp",
      reason: /skipped: --to-home only/
    },
    {
      name: "--to-repo skips a ToHome",
      base: f(H1),
      home: f(H1),
      repo: f(H2),
      o: { toRepo: true },
      direction: "NoOp",
      reason: /skipped: --to-repo only/
    }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const a = one(c.base, c.home, c.repo, c.o, c.readOnly)
      expect(a.direction).toBe(c.direction)
      expect(a.reason).toMatch(c.reason)
      if (c.lock !== undefined) expect(a.lock).toBe(c.lock)
    })
  }

  it("reasons list the files of a folder unit and nothing for a single-file unit", () => {
    const folder = one(
      { "SKILL.md": H1, "a.py": H1 },
      { "SKILL.md": H2, "a.py": H1, "b.py": H3 },
      { "SKILL.md": H1, "a.py": H1 }
    )
    expect(folder.reason).toBe("home changed: SKILL.md, b.py")
    const file = planUnit({
      source: "s",
      unit: "agents/x",
      readOnly: false,
      repo: { "": H1 },
      tools: [{ tool: "claude", base: { "": H1 }, home: { "": H2 } }]
    })[0]!
    expect(file.reason).toBe("home changed")
  })

  it("a change of the executable bit alone is a change, shown as (mode)", () => {
    const x = (h: string) => `${h}+x`
    expect(
      one({ "run.sh": x(H1), "SKILL.md": H1 }, { "run.sh": H1, "SKILL.md": H1 }, { "run.sh": x(H1), "SKILL.md": H1 })
        .reason
    ).toBe("home changed: run.sh (mode)")
    expect(one({ "run.sh": H1 }, { "run.sh": H1 }, { "run.sh": x(H2) }).reason).toBe("repo changed: run.sh")
    const file = planUnit({
      source: "s",
      unit: "agents/x",
      readOnly: false,
      repo: { "": H1 },
      tools: [{ tool: "claude", base: { "": H1 }, home: { "": x(H1) } }]
    })[0]!
    expect(file.reason).toBe("home changed (mode)")
  })

  it("a side that holds part of the other's changes (a run interrupted halfway) is finished, not a conflict", () => {
    const halfDeployed = one({ a: H1, b: H1 }, { a: H2, b: H1 }, { a: H2, b: H3 })
    expect(halfDeployed.direction).toBe("ToHome")
    expect(halfDeployed.reason).toBe("repo changed: b (the home already holds part of it)")
    const halfCommitted = one({ a: H1, b: H1 }, { a: H2, b: H3 }, { a: H2, b: H1 })
    expect(halfCommitted.direction).toBe("ToRepo")
    // Different files changed on each side: a conflict (no merge).
    expect(one({ a: H1, b: H1 }, { a: H2, b: H1 }, { a: H1, b: H3 }).direction).toBe("Conflict")
    // A file the home deleted that the repo still has: not part of the repo's change.
    expect(one({ a: H1, b: H1 }, { a: H2 }, { a: H2, b: H1, c: H3 }).direction).toBe("Conflict")
  })

  it("--prefer marks the side it writes over for a backup", () => {
    expect(one(f(H1), f(H2), f(H3), { prefer: "repo" }).backup).toBe(true)
    expect(one(f(H1), f(H2), f(H3), { prefer: "home" }).backup).toBe(true)
    expect(one(f(H1), f(H1), f(H3), { prefer: "repo" }).backup).toBe(false)
  })

  it("a home edit goes to the repo and on to the other tools", () => {
    const actions = planUnit({
      source: "s",
      unit: "skills/x",
      readOnly: false,
      repo: f(H1),
      tools: [
        { tool: "claude", base: f(H1), home: f(H2) },
        { tool: "codex", base: f(H1), home: f(H1) }
      ]
    })
    expect(actions.map((a) => [a.tool, a.direction])).toEqual([
      ["claude", "ToRepo"],
      ["codex", "ToHome"]
    ])
    expect(actions[1]!.from).toEqual({ tool: "claude" })
    expect(actions[1]!.content).toEqual(f(H2))
  })

  it("two homes edited differently are a conflict, not a race", () => {
    const actions = planUnit({
      source: "s",
      unit: "skills/x",
      readOnly: false,
      repo: f(H1),
      tools: [
        { tool: "claude", base: f(H1), home: f(H2) },
        { tool: "codex", base: f(H1), home: f(H3) }
      ]
    })
    expect(actions.map((a) => a.direction)).toEqual(["Conflict", "Conflict"])
  })

  it("plans 2,000 units × 3 tools, one action each (its speed is bench:skills' to measure)", () => {
    const units: Array<UnitState> = Array.from({ length: 2000 }, (_, i) => ({
      source: "s",
      unit: `skills/u${i}`,
      readOnly: false,
      repo: { "SKILL.md": i % 7 === 0 ? H2 : H1, "ref.md": H3 },
      tools: ["claude", "codex", "cursor"].map((tool, k) => ({
        tool,
        base: { "SKILL.md": H1, "ref.md": H3 },
        home: { "SKILL.md": i % 11 === k ? H3 : H1, "ref.md": H3 }
      }))
    }))
    const actions = planSync(units)
    expect(actions).toHaveLength(6000)
  })
})
