import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SkillSync, type SyncReport } from "../../src/programs/skillSync.js"
import { isolateGit, makeUpstream, readTree, tempRoot } from "../support/gitFixture.js"
import { addSecondSource, makeWorld, read, runIn, write } from "../support/skillWorld.js"

const top = tempRoot("skilllayouts")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

const units = (r: SyncReport, tool = "claude") =>
  r.actions
    .filter((a) => a.tool === tool)
    .map((a) => a.unit)
    .sort()

describe("skill layouts", () => {
  it.effect("a new folder or file in a home that the layout maps is shown as new and created in the repo", () => {
    const w = makeWorld(top)
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        write(w.claude("skills/fresh/SKILL.md"), "written at home first\n")
        write(w.claude("skills/fresh/helper.py"), "print(1)\n")
        write(w.codex("agents/new-agent.md"), "a new agent\n")
        // Not a unit: no SKILL.md, and not a path the layout maps.
        write(w.claude("skills/scratch/notes.txt"), "not a skill\n")
        write(w.claude("projects/x.md"), "not ours\n")
        const status = yield* SkillSync.status()
        const state = (unit: string, tool: string) => status.rows.find((r) => r.unit === unit && r.tool === tool)?.state
        expect(state("skills/fresh", "claude")).toBe("new in home")
        expect(state("agents/new-agent", "codex")).toBe("new in home")
        expect(status.rows.some((r) => r.unit.startsWith("skills/scratch") || r.unit.startsWith("projects"))).toBe(
          false
        )

        const r = yield* SkillSync.sync()
        expect(
          r.actions
            .filter((a) => a.direction === "ToRepo")
            .map((a) => a.unit)
            .sort()
        ).toEqual(["agents/new-agent", "skills/fresh"])
        expect(w.up.read("skills/fresh/helper.py")).toBe("print(1)\n")
        expect(w.up.read("agents/new-agent.md")).toBe("a new agent\n")
        expect(read(w.codex("skills/fresh/SKILL.md"))).toBe("written at home first\n")
        expect(read(w.claude("agents/new-agent.md"))).toBe("a new agent\n")
        expect((yield* SkillSync.sync()).summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0 })
      })
    )
  })

  it.effect("a plugin marketplace deploys its plugins' skills, agents and commands without configuration", () => {
    const w = makeWorld(top, {
      ".claude-plugin/marketplace.json":
        '{"name":"m","plugins":[{"name":"review","source":"./plugins/review"},{"name":"ops","source":"./plugins/ops"}]}\n',
      "plugins/review/.claude-plugin/plugin.json": '{"name":"review"}\n',
      "plugins/review/README.md": "# review\n",
      "plugins/review/skills/code-review/SKILL.md": "review code\n",
      "plugins/review/skills/code-review/checklist.md": "- tests\n",
      "plugins/review/agents/reviewer.md": "a reviewer\n",
      "plugins/review/agents/README.md": "about the agents\n",
      "plugins/review/commands/review.md": "/review\n",
      "plugins/ops/.claude-plugin/plugin.json": '{"name":"ops"}\n',
      "plugins/ops/skills/deploy/SKILL.md": "deploy\n",
      "plugins/ops/agents/reviewer.md": "an ops reviewer\n"
    })
    return runIn(
      w,
      Effect.gen(function* () {
        const r = yield* w.install
        expect(units(r.report)).toEqual([
          "agents/ops/reviewer",
          "agents/review/reviewer",
          "commands/review/review",
          "skills/code-review",
          "skills/deploy"
        ])
        expect(read(w.claude("skills/code-review/checklist.md"))).toBe("- tests\n")
        expect(read(w.codex("agents/ops/reviewer.md"))).toBe("an ops reviewer\n")
        expect(fs.existsSync(w.claude("agents/review/README.md"))).toBe(false)
        // Edits go back to the plugin's folder.
        write(w.claude("skills/deploy/SKILL.md"), "deploy carefully\n")
        yield* SkillSync.sync()
        expect(w.up.read("plugins/ops/skills/deploy/SKILL.md")).toBe("deploy carefully\n")
      })
    )
  })

  it.effect(
    "skill folders at the top and under a folder of their own deploy without configuration, edits going back",
    () => {
      const w = makeWorld(top, {
        "README.md": "# skills\n",
        "pdf-tools/SKILL.md": "fill forms\n",
        "pdf-tools/scripts/fill.py": "print(1)\n",
        "document-skills/docx/SKILL.md": "docx\n",
        "document-skills/README.md": "about them\n"
      })
      return runIn(
        w,
        Effect.gen(function* () {
          const r = yield* w.install
          expect(units(r.report)).toEqual(["skills/docx", "skills/pdf-tools"])
          expect(read(w.claude("skills/pdf-tools/scripts/fill.py"))).toBe("print(1)\n")
          write(w.claude("skills/docx/SKILL.md"), "docx, tracked changes\n")
          yield* SkillSync.sync()
          expect(w.up.read("document-skills/docx/SKILL.md")).toBe("docx, tracked changes\n")
        })
      )
    }
  )

  it.effect(
    "a repository that is one skill deploys as skills/<source name>, both ways, its own hidden files left home",
    () => {
      const w = makeWorld(top, {
        "SKILL.md": "---\nname: forms\n---\nfill forms\n",
        "README.md": "# forms\n",
        "scripts/fill.sh": { exec: "echo fill\n" },
        "agents/checker.md": "checks forms\n",
        ".github/workflows/ci.yml": "on: push\n",
        ".gitignore": "node_modules\n"
      })
      return runIn(
        w,
        Effect.gen(function* () {
          const r = yield* w.install
          expect(units(r.report)).toEqual(["skills/team"])
          expect(readTree(w.claude("skills/team"))).toEqual({
            "README.md": "# forms\n",
            "SKILL.md": "---\nname: forms\n---\nfill forms\n",
            "agents/checker.md": "checks forms\n",
            "scripts/fill.sh": "echo fill\n [+x]"
          })
          expect(fs.statSync(w.codex("skills/team/scripts/fill.sh")).mode & 0o777).toBe(0o755)
          // A home edit and a new file become a commit at the repository's top; an upstream edit comes home.
          write(w.claude("skills/team/SKILL.md"), "---\nname: forms\n---\nfill forms, checked\n")
          write(w.claude("skills/team/notes.md"), "notes\n")
          // A skill of the home that no source deployed stays the home's: it is not adopted into the repository.
          write(w.claude("skills/mine/SKILL.md"), "my own\n")
          yield* SkillSync.sync()
          expect(w.up.read("skills/mine/SKILL.md")).toBeUndefined()
          expect(read(w.claude("skills/mine/SKILL.md"))).toBe("my own\n")
          expect(w.up.read("SKILL.md")).toBe("---\nname: forms\n---\nfill forms, checked\n")
          expect(w.up.read("notes.md")).toBe("notes\n")
          expect(w.up.read(".github/workflows/ci.yml")).toBe("on: push\n")
          expect(read(w.codex("skills/team/notes.md"))).toBe("notes\n")
          w.up.commit({ "README.md": "# forms, upstream\n" })
          yield* SkillSync.sync()
          expect(read(w.claude("skills/team/README.md"))).toBe("# forms, upstream\n")
          const status = yield* SkillSync.status()
          expect(status.rows.map((row) => [row.unit, row.tool, row.state])).toEqual([
            ["skills/team", "claude", "in sync"],
            ["skills/team", "codex", "in sync"]
          ])
        })
      )
    }
  )

  it.effect("category folders of subagents, Codex skill trees and .claude/ folders are detected", () => {
    const categories = makeWorld(top, {
      "README.md": "# agents\n",
      "categories/01-core/README.md": "# core\n",
      "categories/01-core/api-designer.md": "api\n",
      "categories/02-lang/python-pro.md": "python\n"
    })
    const codex = makeWorld(top, {
      "skills/.system/skill-creator/SKILL.md": "create\n",
      "skills/.curated/gh-fix-ci/SKILL.md": "fix ci\n",
      "skills/.curated/gh-fix-ci/scripts/inspect.py": "print()\n"
    })
    const dotfiles = makeWorld(top, {
      "README.md": "# dotfiles\n",
      ".zshrc": "export X=1\n",
      ".claude/settings.json": "{}\n",
      ".claude/skills/notes/SKILL.md": "notes\n",
      ".claude/agents/helper.md": "helper\n",
      ".claude/commands/standup.md": "standup\n"
    })
    return Effect.gen(function* () {
      const a = yield* runIn(categories, categories.install)
      expect(units(a.report)).toEqual(["agents/api-designer", "agents/python-pro"])
      const b = yield* runIn(codex, codex.install)
      expect(units(b.report)).toEqual(["skills/gh-fix-ci", "skills/skill-creator"])
      expect(read(codex.codex("skills/gh-fix-ci/scripts/inspect.py"))).toBe("print()\n")
      const c = yield* runIn(dotfiles, dotfiles.install)
      expect(units(c.report)).toEqual(["agents/helper", "commands/standup", "skills/notes"])
      expect(readTree(dotfiles.env.AGENTSYNC_TOOL_HOME_CLAUDE)).not.toHaveProperty("settings.json")
    })
  })

  it.effect("target_layout: exclude, named captures, and two repo units on one home path refused naming both", () => {
    const w = makeWorld(top, {
      "packs/a/skills/one/SKILL.md": "one\n",
      "packs/a/skills/one/draft.md": "draft\n",
      "packs/b/skills/two/SKILL.md": "two\n",
      "packs/b/skills/one/SKILL.md": "another one\n"
    })
    return runIn(
      w,
      Effect.gen(function* () {
        const source = yield* SkillSync.addSource({ uri: `git:${w.up.bare}`, name: "team" })
        expect(source.added).toBe(true)
        const layout = [
          {
            glob: "packs/{pack}/skills/{name}/SKILL.md",
            repo: "packs/{pack}/skills/{name}",
            home: "skills/{name}",
            exclude: ["**/draft.md"]
          }
        ]
        yield* SkillSync.setLayout("team", layout)
        const clash = yield* Effect.flip(SkillSync.install({ uri: "team", tools: ["claude"] }))
        expect(clash.message).toMatch(
          /packs\/a\/skills\/one.*packs\/b\/skills\/one.*skills\/one|packs\/b\/skills\/one.*packs\/a\/skills\/one.*skills\/one/
        )
        expect(fs.existsSync(w.claude("skills"))).toBe(false)

        yield* SkillSync.setLayout("team", [{ ...layout[0]!, exclude: ["**/draft.md", "packs/b/skills/one/**"] }])
        const r = yield* SkillSync.install({ uri: "team", tools: ["claude"] })
        expect(units(r.report)).toEqual(["skills/one", "skills/two"])
        expect(readTree(w.claude("skills/one"))).toEqual({ "SKILL.md": "one\n" })
      })
    )
  })

  it.effect("target_layout: a unit below another's home path is refused as one inside the other", () => {
    // Said "agents/x.md and extra/y.md both map to agents/x.md/y.md", naming a path only one of them maps to.
    const w = makeWorld(top, { "agents/x.md": "x\n", "extra/y.md": "y\n" })
    return runIn(
      w,
      Effect.gen(function* () {
        yield* SkillSync.addSource({ uri: `git:${w.up.bare}`, name: "team" })
        yield* SkillSync.setLayout("team", [
          { glob: "agents/*.md", repo: "agents/*.md", home: "agents/*.md" },
          { glob: "extra/*.md", repo: "extra/*.md", home: "agents/x.md/*.md" }
        ])
        const clash = yield* Effect.flip(SkillSync.install({ uri: "team", tools: ["claude"] }))
        expect(clash.message).toContain(
          "agents/x.md and extra/y.md map to agents/x.md and agents/x.md/y.md, one inside the other"
        )
        expect(fs.existsSync(w.claude("agents"))).toBe(false)
      })
    )
  })

  it.effect("install of a source that matches nothing says what the tree holds and fails, recording nothing", () => {
    const w = makeWorld(top, {
      "bundles/a/prompts/x.md": "x\n",
      "bundles/b/prompts/y.md": "y\n",
      "bundles/b/prompts/z.md": "z\n",
      "docs/guide.md": "guide\n"
    })
    return runIn(
      w,
      Effect.gen(function* () {
        const e = yield* Effect.flip(w.install)
        expect(e._tag).toBe("InvalidInput")
        expect(e.message).toMatch(/matches no unit/)
        expect(e.message).toContain("found 3 .md files in bundles/*/prompts/")
        expect(e.message).toMatch(/skill source layout/)
        expect(fs.existsSync(nodePath.join(w.state, "manifest.yaml"))).toBe(false)
      })
    )
  })

  it.effect("two sources that map one home path are refused before any write, naming both", () => {
    const w = makeWorld(top)
    const other = makeUpstream(
      w.root,
      { "skills/pdf/SKILL.md": "another pdf skill\n", "skills/other/SKILL.md": "other\n" },
      "other"
    )
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        const before = w.snapshot()
        const e = yield* Effect.flip(SkillSync.install({ uri: `git:${other.bare}`, name: "second", tools: ["claude"] }))
        expect(e.message).toMatch(/team:skills\/pdf/)
        expect(e.message).toMatch(/second:skills\/pdf/)
        expect(w.snapshot()).toEqual(before)
        expect(fs.existsSync(w.claude("skills/other"))).toBe(false)
      })
    )
  })

  it.effect("a second source never takes the units another source deployed for new units of its own", () => {
    const w = makeWorld(top)
    const other = makeUpstream(w.root, { "skills/other/SKILL.md": "other\n" }, "other")
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        // Scoped to the new source: the first one's units are known from the lock.
        const r = yield* SkillSync.install({ uri: `git:${other.bare}`, name: "second", tools: ["claude", "codex"] })
        expect(units(r.report)).toEqual(["skills/other"])
        write(w.claude("skills/fresh/SKILL.md"), "new\n")
        // Both sources could take a new skill folder: neither does; the run says so.
        const s = yield* SkillSync.sync()
        expect(s.actions.filter((a) => a.direction !== "NoOp")).toEqual([])
        expect(s.notes.map((n) => n.note).join("\n")).toMatch(
          /skills\/fresh is new in a home and team and second could each take it/
        )
        yield* SkillSync.install({ uri: "second", units: "skills/fresh", tools: ["claude"] })
        yield* SkillSync.sync()
        expect(other.read("skills/fresh/SKILL.md")).toBe("new\n")
        expect(w.up.read("skills/fresh/SKILL.md")).toBeUndefined()
      })
    )
  })

  it.effect("a sync with two sources on one home path is refused before any write", () => {
    const w = makeWorld(top)
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        yield* addSecondSource(w, { "agents/reviewer.md": "another reviewer\n" })
        write(w.claude("commands/ship.md"), "edited\n")
        const before = w.snapshot()
        const e = yield* Effect.flip(SkillSync.sync())
        expect(e.message).toMatch(
          /team:agents\/reviewer and second:agents\/reviewer both map to agents\/reviewer\.md in the home of claude/
        )
        expect(w.snapshot()).toEqual(before)
        const status = yield* SkillSync.status()
        expect(status.errors.map((x) => x.reason).join("\n")).toMatch(/both map to agents\/reviewer\.md/)
      })
    )
  })

  it.effect("a unit of a second source below a file unit's home path is refused before any write", () => {
    // Planned, its write failed at apply (mkdir over the file agents/reviewer.md): one source's unit may not sit
    // below another's, whether that one is a folder or a file.
    const w = makeWorld(top)
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        yield* addSecondSource(w, { "agents/reviewer.md/extra.md": "below a file\n" })
        write(w.claude("commands/ship.md"), "edited\n")
        const before = w.snapshot()
        const e = yield* Effect.flip(SkillSync.sync())
        expect(e.message).toMatch(
          /team:agents\/reviewer and second:agents\/reviewer\.md\/extra map to agents\/reviewer\.md and agents\/reviewer\.md\/extra\.md, one inside the other, in the home of claude/
        )
        expect(w.snapshot()).toEqual(before)
      })
    )
  })

  it.effect("a second source's unit below a file unit of a source outside the run is refused before any write", () => {
    // The check against sources known only from the lock compared names: install and a sync of the second source
    // alone planned agents/reviewer.md/extra.md and failed at apply (mkdir over the file).
    const w = makeWorld(top)
    const other = makeUpstream(w.root, { "agents/reviewer.md/extra.md": "below a file\n" }, "s2")
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        const before = w.snapshot()
        const reason =
          /team:agents\/reviewer and second:agents\/reviewer\.md\/extra map to agents\/reviewer\.md and agents\/reviewer\.md\/extra\.md, one inside the other, in the home of claude/
        const e = yield* Effect.flip(SkillSync.install({ uri: `git:${other.bare}`, name: "second", tools: ["claude"] }))
        expect(e.message).toMatch(reason)
        expect(w.snapshot()).toEqual(before)
        expect(fs.existsSync(w.claude("agents/reviewer.md/extra.md"))).toBe(false)
        // Refused, the install leaves no source behind; added by hand, a sync of it alone is refused too.
        expect((yield* SkillSync.listSources()).map((x) => x.name)).toEqual(["team"])
        yield* addSecondSource(w, { "agents/reviewer.md/extra.md": "below a file\n" })
        const added = w.snapshot()
        const scoped = yield* Effect.flip(SkillSync.sync({ scope: "second" }))
        expect(scoped.message).toMatch(reason)
        expect(w.snapshot()).toEqual(added)
      })
    )
  })
})
