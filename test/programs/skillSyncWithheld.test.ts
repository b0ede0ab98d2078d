import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import fc from "fast-check"
import { outcomeOf, SkillSync, type SyncReport } from "../../src/programs/skillSync.js"
import { type FixtureFile, isolateGit, place, readTree, tempRoot } from "../support/gitFixture.js"
import { addSecondSource, makeWorld, read, runIn, type World, write } from "../support/skillWorld.js"

const top = tempRoot("skillwithheld")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

// A marketplace whose plugins a and b each have a skill `access`: a detected layout maps both to skills/access.
const MARKET: Record<string, FixtureFile> = {
  ".claude-plugin/marketplace.json": '{"name":"m","plugins":[{"name":"a"},{"name":"b"}]}\n',
  "plugins/a/.claude-plugin/plugin.json": '{"name":"a"}\n',
  "plugins/a/skills/alpha/SKILL.md": "alpha\n",
  "plugins/a/skills/alpha/run.sh": { exec: "#!/bin/sh\necho alpha\n" },
  "plugins/a/skills/alpha/latest.md": { link: "SKILL.md" },
  "plugins/b/.claude-plugin/plugin.json": '{"name":"b"}\n',
  "plugins/b/skills/beta/SKILL.md": "beta\n",
  "plugins/b/agents/helper.md": "helper\n"
}
const A_ACCESS: Record<string, FixtureFile> = {
  "plugins/a/skills/access/SKILL.md": "a's access\n",
  "plugins/a/skills/access/grant.sh": { exec: "#!/bin/sh\necho a\n" }
}
const B_ACCESS: Record<string, FixtureFile> = { "plugins/b/skills/access/SKILL.md": "b's access\n" }

const lockOf = (w: World) => {
  const text = w.lockText()
  return text === undefined ? undefined : (JSON.parse(text.slice(text.indexOf("\n") + 1)) as LockJson)
}
interface LockJson {
  readonly sources: Record<string, { readonly units: Record<string, unknown> }>
}
const under = (tree: Record<string, string>, keep: (path: string) => boolean) =>
  Object.fromEntries(Object.entries(tree).filter(([p]) => keep(p)))
const isAccess = (p: string) => p === "skills/access" || p.startsWith("skills/access/")
const isRepoAccess = (p: string) => /^plugins\/[ab]\/skills\/access(\/|$)/.test(p)

describe("skill sync: units a detected layout maps to one home path", () => {
  it.effect(
    "are left out, named with both repo paths, and never taken as removed: homes, repo and lock entry untouched; the others sync",
    () => {
      // Deployed first while only plugin a had the skill; then plugin b adds one of the same name upstream.
      const w = makeWorld(top, { ...MARKET, ...A_ACCESS })
      return runIn(
        w,
        Effect.gen(function* () {
          yield* w.install
          expect(read(w.codex("skills/access/SKILL.md"))).toBe("a's access\n")
          const lockBefore = lockOf(w)?.sources["team"]?.units["skills/access"]
          expect(lockBefore).toBeDefined()
          w.up.commit({ ...B_ACCESS, "plugins/b/skills/beta/SKILL.md": "beta v2\n" })
          const remoteBefore = w.up.log()
          write(w.claude("skills/access/SKILL.md"), "edited at home\n")
          write(w.claude("skills/alpha/SKILL.md"), "alpha edited at home\n")
          const before = w.snapshot()

          const r = yield* SkillSync.sync()
          expect(r.withheld).toEqual([
            expect.objectContaining({
              source: "team",
              unit: "skills/access",
              repo: ["plugins/a/skills/access", "plugins/b/skills/access"]
            })
          ])
          expect(r.withheld[0]?.reason).toMatch(/agentsync skill source layout team FILE/)
          expect(r.actions.some((a) => isAccess(a.unit))).toBe(false)
          // Neither home's copy is written or removed (codex's is not "deleted in the repo").
          const after = w.snapshot()
          expect(under(after.claude, isAccess)).toEqual(under(before.claude, isAccess))
          expect(under(after.codex, isAccess)).toEqual(under(before.codex, isAccess))
          expect(lockOf(w)?.sources["team"]?.units["skills/access"]).toEqual(lockBefore)
          // The others sync both ways: the home edit is committed, the upstream one deployed.
          expect(w.up.read("plugins/a/skills/alpha/SKILL.md")).toBe("alpha edited at home\n")
          expect(w.up.read("plugins/a/skills/access/SKILL.md")).toBe("a's access\n")
          expect(w.up.log().length).toBe(remoteBefore.length + 1)
          expect(read(w.codex("skills/beta/SKILL.md"))).toBe("beta v2\n")
          expect(read(w.codex("skills/alpha/SKILL.md"))).toBe("alpha edited at home\n")
          // The run ends as a unit left undone does: exit 1, naming it.
          const outcome = outcomeOf("agentsync skill sync", r)
          expect(Option.map(outcome, (e) => [e._tag, e.message])).toEqual(
            Option.some(["CommandFailed", expect.stringMatching(/team:skills\/access left out/)])
          )
          // Status says the same, and the next run changes nothing.
          const s = yield* SkillSync.status()
          expect(s.withheld.map((x) => x.unit)).toEqual(["skills/access"])
          expect(s.rows.some((x) => isAccess(x.unit))).toBe(false)
          const again = yield* SkillSync.sync()
          expect(again.summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0 })
          expect(under(w.snapshot().claude, isAccess)).toEqual(under(before.claude, isAccess))
        })
      )
    }
  )

  it.effect("a fresh install deploys the rest, leaves an existing home copy alone and exits 1", () => {
    const w = makeWorld(top, { ...MARKET, ...A_ACCESS, ...B_ACCESS })
    write(w.claude("skills/access/SKILL.md"), "mine\n")
    return runIn(
      w,
      Effect.gen(function* () {
        const { report } = yield* w.install
        expect(report.withheld.map((x) => [x.unit, x.repo])).toEqual([
          ["skills/access", ["plugins/a/skills/access", "plugins/b/skills/access"]]
        ])
        expect(read(w.claude("skills/access/SKILL.md"))).toBe("mine\n")
        expect(fs.existsSync(w.codex("skills/access"))).toBe(false)
        expect(lockOf(w)?.sources["team"]?.units["skills/access"]).toBeUndefined()
        const codex = readTree(w.env.AGENTSYNC_TOOL_HOME_CODEX)
        expect(codex["skills/alpha/run.sh"]).toBe("#!/bin/sh\necho alpha\n [+x]")
        expect(codex["skills/alpha/latest.md"]).toBe("-> SKILL.md")
        expect(codex["agents/b/helper.md"]).toBe("helper\n")
        expect(Option.isSome(outcomeOf("agentsync skill install", report))).toBe(true)
        // Settled by a layout rule, the unit syncs like any other.
        const rules = [
          { glob: "plugins/b/skills/access/SKILL.md", repo: "plugins/b/skills/access", home: "skills/b-access" },
          { glob: "plugins/{p}/skills/{name}/SKILL.md", repo: "plugins/{p}/skills/{name}", home: "skills/{name}" },
          { glob: "plugins/{p}/agents/{name}.md", repo: "plugins/{p}/agents/{name}.md", home: "agents/{p}/{name}.md" }
        ]
        yield* SkillSync.setLayout("team", rules)
        // The user's copy at skills/access, where a rule now puts a's unit, meets it as a conflict (as the advice said).
        const settled = yield* SkillSync.sync({ dryRun: true })
        expect(settled.actions.find((a) => a.unit === "skills/access" && a.tool === "claude")?.direction).toBe(
          "Conflict"
        )
        const r = yield* SkillSync.sync({ prefer: "repo" })
        expect(r.withheld).toEqual([])
        expect(read(w.codex("skills/b-access/SKILL.md"))).toBe("b's access\n")
        expect(read(w.codex("skills/access/SKILL.md"))).toBe("a's access\n")
      })
    )
  })

  it.effect("withheld from the first install, a user's own copy in the home is neither pushed nor touched", () => {
    const w = makeWorld(top, { ...MARKET, ...A_ACCESS, ...B_ACCESS })
    write(w.claude("skills/access/SKILL.md"), "mine\n")
    write(w.codex("skills/access/notes.md"), "my notes\n")
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        const before = w.snapshot()
        const repoBefore = w.up.read("plugins/a/skills/access/SKILL.md")
        // Read at home, the copy would look like a unit new in the home, to be pushed into the repo.
        const plan = yield* SkillSync.sync({ dryRun: true })
        expect(plan.actions.filter((a) => isAccess(a.unit))).toEqual([])
        expect(plan.withheld.map((x) => x.unit)).toEqual(["skills/access"])
        const r = yield* SkillSync.sync()
        expect(r.actions.filter((a) => isAccess(a.unit))).toEqual([])
        const after = w.snapshot()
        expect(under(after.claude, isAccess)).toEqual(under(before.claude, isAccess))
        expect(under(after.codex, isAccess)).toEqual(under(before.codex, isAccess))
        expect(after.remote).toEqual(before.remote)
        expect(w.up.read("plugins/a/skills/access/SKILL.md")).toBe(repoBefore)
        expect(w.up.read("skills/access/SKILL.md")).toBeUndefined()
      })
    )
  })

  it.effect("the advice says what settling does to a user's own copy at the old home, and it does that", () => {
    const w = makeWorld(top, { ...MARKET, ...A_ACCESS, ...B_ACCESS })
    write(w.claude("skills/access/SKILL.md"), "mine\n")
    return runIn(
      w,
      Effect.gen(function* () {
        const { report } = yield* w.install
        const advice = report.withheld[0]?.reason ?? ""
        expect(advice).toMatch(
          /a copy there that no source deployed \(your own\) is new in the home: pushed to the repo as a unit of its own where a rule still maps skills\/access/
        )
        expect(advice).toMatch(/move it away first if it should not go/)
        expect(advice).toMatch(/`agentsync skill sync --dry-run team` shows which/)
        // Settled so: each plugin's skills under their own name, a skills/ folder at the top kept where it was.
        yield* SkillSync.setLayout("team", [
          { glob: "plugins/{p}/skills/{name}/SKILL.md", repo: "plugins/{p}/skills/{name}", home: "skills/{p}-{name}" },
          { glob: "skills/{name}/SKILL.md", repo: "skills/{name}", home: "skills/{name}" },
          { glob: "plugins/{p}/agents/{name}.md", repo: "plugins/{p}/agents/{name}.md", home: "agents/{p}/{name}.md" }
        ])
        const plan = yield* SkillSync.sync({ dryRun: true })
        expect(plan.withheld).toEqual([])
        // Pushed from the home it is in, and so deployed to the other.
        expect(plan.actions.filter((a) => a.unit === "skills/access").map((a) => [a.direction, a.tool])).toEqual([
          ["ToRepo", "claude"],
          ["ToHome", "codex"]
        ])
        yield* SkillSync.sync()
        expect(w.up.read("skills/access/SKILL.md")).toBe("mine\n")
        expect(read(w.codex("skills/access/SKILL.md"))).toBe("mine\n")
        expect(read(w.codex("skills/a-access/SKILL.md"))).toBe("a's access\n")
        expect(read(w.codex("skills/b-access/SKILL.md"))).toBe("b's access\n")
      })
    )
  })

  it.effect("from a read-only source the advice says a user's own copy is kept in the home, and it is", () => {
    const w = makeWorld(top, { ...MARKET, ...A_ACCESS, ...B_ACCESS })
    write(w.claude("skills/access/SKILL.md"), "mine\n")
    return runIn(
      w,
      Effect.gen(function* () {
        const { report } = yield* SkillSync.install({
          uri: `git:${w.up.bare}`,
          name: "team",
          tools: ["claude", "codex"],
          readOnly: true
        })
        const [what = "", then = ""] = (report.withheld[0]?.reason ?? "").split("\n")
        // The consequences on a line of their own; nothing said of a push the source never takes.
        expect(what).toMatch(/set it with `agentsync skill source layout team FILE`;$/)
        expect(then).toMatch(
          /^then .*\(your own\) is new in the home: kept in the home, not pushed \(the source is read-only\), where a rule still maps skills\/access,/
        )
        expect(then).not.toMatch(/pushed to the repo/)
        yield* SkillSync.setLayout("team", [
          { glob: "plugins/{p}/skills/{name}/SKILL.md", repo: "plugins/{p}/skills/{name}", home: "skills/{p}-{name}" },
          { glob: "skills/{name}/SKILL.md", repo: "skills/{name}", home: "skills/{name}" },
          { glob: "plugins/{p}/agents/{name}.md", repo: "plugins/{p}/agents/{name}.md", home: "agents/{p}/{name}.md" }
        ])
        const plan = yield* SkillSync.sync({ dryRun: true })
        expect(plan.withheld).toEqual([])
        expect(plan.actions.find((a) => a.unit === "skills/access" && a.tool === "claude")).toMatchObject({
          direction: "NoOp",
          reason: "new in the home; the source is read-only"
        })
        yield* SkillSync.sync()
        expect(w.up.read("skills/access/SKILL.md")).toBeUndefined()
        expect(read(w.claude("skills/access/SKILL.md"))).toBe("mine\n")
      })
    )
  })

  it.effect("a second source writing the withheld home path refuses an unscoped run before any write", () => {
    const w = makeWorld(top, { ...MARKET, ...A_ACCESS, ...B_ACCESS })
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        yield* addSecondSource(w, { "skills/access/SKILL.md": "another access\n" })
        const before = w.snapshot()
        const e = yield* Effect.flip(SkillSync.sync())
        expect(e.message).toMatch(/team:skills\/access and second:skills\/access both map to skills\/access/)
        expect(w.snapshot()).toEqual(before)
        expect(fs.existsSync(w.claude("skills/access"))).toBe(false)
      })
    )
  })

  it.effect("a withheld file unit holds its own path, and what would lie below it, against a second source", () => {
    // Subagents in category folders land on agents/<name>.md: two categories with one name collide on a file.
    const w = makeWorld(top, {
      "categories/a/x.md": "a's x\n",
      "categories/b/x.md": "b's x\n",
      "categories/a/y.md": "y\n"
    })
    return runIn(
      w,
      Effect.gen(function* () {
        const { report } = yield* w.install
        expect(report.withheld.map((x) => [x.unit, x.repo])).toEqual([
          ["agents/x", ["categories/a/x.md", "categories/b/x.md"]]
        ])
        expect(report.withheld[0]?.reason).toMatch(
          /^categories\/a\/x\.md and categories\/b\/x\.md both map to agents\/x\.md;/
        )
        expect(read(w.codex("agents/y.md"))).toBe("y\n")
        expect(fs.existsSync(w.codex("agents/x.md"))).toBe(false)
        yield* addSecondSource(w, { "agents/x.md/notes.md": "below the withheld file\n" })
        const before = w.snapshot()
        const e = yield* Effect.flip(SkillSync.sync())
        expect(e.message).toMatch(
          /team:agents\/x and second:agents\/x\.md\/notes map to agents\/x\.md and agents\/x\.md\/notes\.md, one inside the other/
        )
        expect(w.snapshot()).toEqual(before)
      })
    )
  })

  it.effect("a unit below another's file in one marketplace: both are withheld, each under its own name", () => {
    // A plugin folder named like an agent file of the common layout: its agents land below agents/x.md.
    const files = {
      ".claude-plugin/marketplace.json": '{"name":"m","plugins":[{"name":"x.md"}]}\n',
      "plugins/x.md/.claude-plugin/plugin.json": '{"name":"x.md"}\n',
      "plugins/x.md/agents/y.md": "y of plugin x.md\n",
      "agents/x.md": "x\n",
      "agents/z.md": "z\n"
    }
    const w = makeWorld(top, files)
    return runIn(
      w,
      Effect.gen(function* () {
        const { report } = yield* w.install
        expect(report.withheld.map((x) => [x.unit, x.repo])).toEqual([
          ["agents/x.md/y", ["agents/x.md", "plugins/x.md/agents/y.md"]]
        ])
        expect(report.withheld[0]?.reason).toMatch(
          /^agents\/x\.md and plugins\/x\.md\/agents\/y\.md map to agents\/x\.md and agents\/x\.md\/y\.md, one inside another;/
        )
        expect(report.skipped).toEqual([])
        expect(Option.isSome(outcomeOf("agentsync skill install", report))).toBe(true)
        for (const tool of [w.claude, w.codex]) {
          expect(read(tool("agents/z.md"))).toBe("z\n")
          expect(fs.existsSync(tool("agents/x.md"))).toBe(false)
        }
        // Selected by its own name alone, the unit below is reported too (its tools are its own).
        const v = makeWorld(top, files)
        const only = yield* Effect.provide(
          SkillSync.install({ uri: `git:${v.up.bare}`, name: "team", tools: ["claude"], units: "agents/x" }),
          v.layer
        )
        expect(only.report.withheld.map((x) => x.unit)).toEqual(["agents/x.md/y"])
        expect(readTree(v.env.AGENTSYNC_TOOL_HOME_CLAUDE)).toEqual({})
      })
    )
  })

  it.effect("rules the user wrote that map two units to one home path still refuse the source", () => {
    const w = makeWorld(top, { ...MARKET, ...A_ACCESS, ...B_ACCESS })
    return runIn(
      w,
      Effect.gen(function* () {
        const refused = yield* Effect.flip(
          SkillSync.install({
            uri: `git:${w.up.bare}`,
            name: "team",
            tools: ["claude"],
            layout: [{ glob: "plugins/*/skills/{n}/SKILL.md", repo: "plugins/*/skills/{n}", home: "skills/{n}" }]
          })
        )
        expect(refused.message).toMatch(
          /plugins\/a\/skills\/access and plugins\/b\/skills\/access both map to skills\/access/
        )
        expect(readTree(w.env.AGENTSYNC_TOOL_HOME_CLAUDE)).toEqual({})
      })
    )
  })

  // Laws, whatever the homes, the repo and the options (--prefer, --delete, --to-home, --to-repo, --tools, dry run):
  // 1. a left-out unit (a folder: the plugins' skill `access`; a file: the categories' subagent `ops`) has its paths
  //    neither written nor removed in any home or in the repo, and its lock entry is kept;
  // 2. the run ends as the world without the colliding units does, except that it cannot end well: exit 3 when that
  //    world has a conflict to decide, else exit 1, naming each unit left out;
  // 3. the other units end with the same plan, homes, repo and lock as in that world.
  it("a left-out unit is untouched and the others sync as if it did not exist", async () => {
    const others = ["skills/alpha", "skills/beta", "agents/b/helper", "agents/lead"] as const
    const repoOf: Record<(typeof others)[number], string> = {
      "skills/alpha": "plugins/a/skills/alpha",
      "skills/beta": "plugins/b/skills/beta",
      "agents/b/helper": "plugins/b/agents/helper.md",
      "agents/lead": "categories/c1/lead.md"
    }
    // Both worlds hold category folders, one never edited, so both always detect the same layout.
    const CATEGORIES: Record<string, FixtureFile> = {
      "categories/c1/lead.md": "lead\n",
      "categories/c3/keep.md": "keep\n"
    }
    const C1_OPS: Record<string, FixtureFile> = { "categories/c1/ops.md": "c1's ops\n" }
    const C2_OPS: Record<string, FixtureFile> = { "categories/c2/ops.md": "c2's ops\n" }
    const isHeld = (p: string) => isAccess(p) || p === "agents/ops.md"
    const isRepoHeld = (p: string) => isRepoAccess(p) || /^categories\/c[12]\/ops\.md$/.test(p)
    const heldUnits = ["agents/ops", "skills/access"]
    const op = fc.constantFrom("none", "edit", "delete", "add")
    const tool = fc.constantFrom("claude", "codex")
    const arb = fc.record({
      home: fc.array(fc.tuple(fc.constantFrom(...others), tool, op), { maxLength: 4 }),
      repo: fc.array(fc.tuple(fc.constantFrom(...others), op), { maxLength: 3 }),
      held: fc.array(fc.tuple(fc.constantFrom("skills/access", "agents/ops"), tool, op), { maxLength: 3 }),
      // Upstream edits of a colliding unit (deleting one would settle its collision).
      heldRepo: fc.array(
        fc.tuple(fc.constantFrom("plugins/a/skills/access", "categories/c1/ops.md"), fc.constantFrom("edit", "add")),
        {
          maxLength: 2
        }
      ),
      options: fc.record({
        prefer: fc.constantFrom(undefined, "home" as const, "repo" as const),
        delete: fc.boolean(),
        toHome: fc.boolean(),
        toRepo: fc.boolean(),
        tools: fc.constantFrom(undefined, ["claude"], ["codex"], ["claude", "codex"]),
        dryRun: fc.boolean()
      })
    })
    const change = (at: string, folder: boolean, what: string, text: string) => {
      const file = folder ? nodePath.join(at, what === "add" ? "extra.md" : "SKILL.md") : at
      if (what === "delete") fs.rmSync(at, { recursive: true, force: true })
      else if (what === "edit" || (what === "add" && folder)) place(file, text)
    }
    const homeOf = (w: World, t: string) =>
      t === "claude" ? w.env.AGENTSYNC_TOOL_HOME_CLAUDE : w.env.AGENTSYNC_TOOL_HOME_CODEX
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        // A: the marketplace with both plugins' access and both categories' ops, deployed while only a's and c1's
        // existed; B: with neither.
        const a = makeWorld(top)
        const b = makeWorld(top)
        const dirA = nodePath.join(a.root, "market")
        const dirB = nodePath.join(b.root, "market")
        for (const [p, f] of Object.entries({ ...MARKET, ...CATEGORIES, ...A_ACCESS, ...C1_OPS }))
          place(nodePath.join(dirA, p), f)
        for (const [p, f] of Object.entries({ ...MARKET, ...CATEGORIES })) place(nodePath.join(dirB, p), f)
        const install = (w: World, dir: string) =>
          Effect.runPromise(runIn(w, SkillSync.install({ uri: `local:${dir}`, name: "m", tools: ["claude", "codex"] })))
        await install(a, dirA)
        await install(b, dirB)
        for (const [p, f] of Object.entries({ ...B_ACCESS, ...C2_OPS })) place(nodePath.join(dirA, p), f)
        for (const [root, what] of c.heldRepo)
          change(nodePath.join(dirA, root), !root.endsWith(".md"), what, `${root}, upstream\n`)
        for (const [unit, t, what] of c.held) {
          const folder = unit.startsWith("skills/")
          const at = nodePath.join(homeOf(a, t), folder ? unit : `${unit}.md`)
          change(at, folder, what, `held ${unit} at ${t}\n`)
        }
        for (const [w, dir] of [
          [a, dirA],
          [b, dirB]
        ] as const) {
          for (const [unit, what] of c.repo) {
            const folder = unit.startsWith("skills/")
            change(nodePath.join(dir, repoOf[unit]), folder, what, `${unit} in the repo\n`)
          }
          for (const [unit, t, what] of c.home) {
            const folder = unit.startsWith("skills/")
            const home = nodePath.join(homeOf(w, t), unit)
            change(folder ? home : `${home}.md`, folder, what, `${unit} at ${t}\n`)
          }
        }
        const before = { claude: a.snapshot().claude, codex: a.snapshot().codex, repo: readTree(dirA), lock: lockOf(a) }
        const sync = (w: World) => Effect.runPromise(runIn(w, SkillSync.sync(c.options)))
        const ra: SyncReport = await sync(a)
        const rb: SyncReport = await sync(b)
        const after = a.snapshot()
        // 1. The left-out units: both homes and the repo as they were, their lock entries kept.
        expect(ra.withheld.map((x) => x.unit).sort()).toEqual(heldUnits)
        expect(under(after.claude, isHeld)).toEqual(under(before.claude, isHeld))
        expect(under(after.codex, isHeld)).toEqual(under(before.codex, isHeld))
        expect(under(readTree(dirA), isRepoHeld)).toEqual(under(before.repo, isRepoHeld))
        for (const unit of heldUnits)
          expect(lockOf(a)?.sources["m"]?.units[unit]).toEqual(before.lock?.sources["m"]?.units[unit])
        // 2. How the run ends.
        const ea = outcomeOf("agentsync skill sync", ra)
        const eb = outcomeOf("agentsync skill sync", rb)
        if (Option.isSome(eb) && eb.value._tag === "Conflict") expect(ea).toEqual(eb)
        else {
          expect(Option.map(ea, (e) => [e._tag, e._tag === "CommandFailed" ? e.exitCode : 3])).toEqual(
            Option.some(["CommandFailed", 1])
          )
          for (const unit of heldUnits) expect(Option.getOrThrow(ea).message).toContain(`m:${unit} left out`)
        }
        // 3. The others: the same plan, homes, repo and lock as in the world without the colliding units.
        const plan = (r: SyncReport) => r.actions.map((x) => [x.unit, x.tool, x.direction, x.status, x.reason])
        expect(plan(ra)).toEqual(plan(rb))
        const undone = (r: SyncReport) => r.skipped.map((x) => [x.unit, x.tool])
        expect(undone(ra)).toEqual(undone(rb))
        expect(under(after.claude, (p) => !isHeld(p))).toEqual(b.snapshot().claude)
        expect(under(after.codex, (p) => !isHeld(p))).toEqual(b.snapshot().codex)
        expect(under(readTree(dirA), (p) => !isRepoHeld(p))).toEqual(readTree(dirB))
        const { "skills/access": _, "agents/ops": __, ...rest } = lockOf(a)?.sources["m"]?.units ?? {}
        expect(rest).toEqual(lockOf(b)?.sources["m"]?.units)
      }),
      { numRuns: 10 }
    )
  }, 300_000)
})
