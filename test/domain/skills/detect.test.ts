import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { describeTree, detectLayout } from "../../../src/domain/skills/detect.js"
import { discoverUnits } from "../../../src/domain/skills/discover.js"
import { compileLayout } from "../../../src/domain/skills/layout.js"

/** The units a tree gives with the layout detected from it. */
const unitsOf = (paths: ReadonlyArray<string>) => {
  const detected = detectLayout(paths)
  const found = discoverUnits(Either.getOrThrow(compileLayout(detected.mappings)), paths)
  return { kinds: detected.kinds, units: found.units.map((u) => [u.name, u.repoRoot]), collisions: found.collisions }
}

describe("layout detection from a repository's own markers", () => {
  it("a plugin marketplace: skills flat, agents and commands under their plugin's name (plugins share agent names)", () => {
    const r = unitsOf([
      ".claude-plugin/marketplace.json",
      "plugins/ops/.claude-plugin/plugin.json",
      "plugins/ops/agents/reviewer.md",
      "plugins/ops/agents/README.md",
      "plugins/ops/commands/deploy.md",
      "plugins/ops/hooks/hooks.json",
      "plugins/ops/skills/runbook/SKILL.md",
      "plugins/ops/skills/runbook/steps.md",
      "plugins/review/.claude-plugin/plugin.json",
      "plugins/review/agents/reviewer.md",
      "plugins/no-manifest/skills/lint/SKILL.md",
      "README.md"
    ])
    expect(r.kinds).toEqual(["plugin marketplace: 3 plugins under plugins/"])
    expect(r.collisions).toEqual([])
    expect(r.units).toEqual([
      ["skills/lint", "plugins/no-manifest/skills/lint"],
      ["skills/runbook", "plugins/ops/skills/runbook"],
      ["agents/ops/reviewer", "plugins/ops/agents/reviewer.md"],
      ["agents/review/reviewer", "plugins/review/agents/reviewer.md"],
      ["commands/ops/deploy", "plugins/ops/commands/deploy.md"]
    ])
  })

  it("Codex skill trees, category folders of subagents, and a .claude/ folder", () => {
    expect(
      unitsOf([
        "skills/.system/creator/SKILL.md",
        "skills/.curated/gh-fix-ci/SKILL.md",
        "skills/.curated/gh-fix-ci/scripts/a.py",
        "README.md"
      ])
    ).toMatchObject({
      kinds: ["Codex skills: skills/.system, skills/.curated"],
      units: [
        ["skills/creator", "skills/.system/creator"],
        ["skills/gh-fix-ci", "skills/.curated/gh-fix-ci"]
      ]
    })
    // Categories that are also plugins (with a manifest but no skills/agents folders) are categories.
    expect(
      unitsOf([
        "categories/01-core/.claude-plugin/plugin.json",
        "categories/01-core/README.md",
        "categories/01-core/api.md",
        "categories/02-lang/py.md"
      ])
    ).toMatchObject({
      kinds: ["subagents in category folders: 2 under categories/*"],
      units: [
        ["agents/api", "categories/01-core/api.md"],
        ["agents/py", "categories/02-lang/py.md"]
      ]
    })
    expect(
      unitsOf([
        ".zshrc",
        ".claude/settings.json",
        ".claude/skills/notes/SKILL.md",
        ".claude/agents/helper.md",
        ".claude/commands/git/commit.md"
      ])
    ).toMatchObject({
      kinds: ["a tool home folder: .claude/"],
      units: [
        ["skills/notes", ".claude/skills/notes"],
        ["agents/helper", ".claude/agents/helper.md"],
        ["commands/git/commit", ".claude/commands/git/commit.md"]
      ]
    })
    // A repository's own .claude/ settings do not hide the marketplace it is.
    expect(
      unitsOf([".claude/commands/triage.md", "plugins/a/.claude-plugin/plugin.json", "plugins/a/commands/x.md"]).units
    ).toEqual([["commands/a/x", "plugins/a/commands/x.md"]])
  })

  it("the common layouts still apply, after the detected ones", () => {
    expect(unitsOf(["skills/pdf/SKILL.md", "agents/a.md", "agents/README.md"])).toMatchObject({
      kinds: [],
      units: [
        ["skills/pdf", "skills/pdf"],
        ["agents/a", "agents/a.md"]
      ]
    })
  })

  it("says what a tree holds when nothing matches", () => {
    expect(
      describeTree([
        "bundles/a/skills/x/SKILL.md",
        "bundles/b/skills/y/SKILL.md",
        "bundles/b/skills/y/ref.md",
        "docs/guide.md",
        "docs/faq.md",
        "README.md"
      ])
    ).toEqual(["found 2 SKILL.md under bundles/*/skills/*", "found 2 .md files in docs/"])
    expect(describeTree(["README.md", "src/index.ts"])).toEqual([
      "found no SKILL.md and no Markdown outside the top folder among 2 files"
    ])
  })
})
