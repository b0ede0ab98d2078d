import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { describeTree, detectLayout } from "../../../src/domain/skills/detect.js"
import { discoverUnits } from "../../../src/domain/skills/discover.js"
import { compileLayout } from "../../../src/domain/skills/layout.js"

/** The units a tree gives with the layout detected from it. */
const unitsOf = (paths: ReadonlyArray<string>, name?: string) => {
  const detected = detectLayout(paths, name)
  const found = discoverUnits(Either.getOrThrow(compileLayout(detected.mappings)), paths)
  return {
    kinds: detected.kinds,
    units: found.units.map((u) => [u.name, u.repoRoot]),
    files: found.units.map((u) => u.files),
    collisions: found.collisions
  }
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

  it("skill folders outside skills/: at the top and collections under a folder, each folder holding a SKILL.md", () => {
    const r = unitsOf([
      "README.md",
      "pdf-tools/SKILL.md",
      "pdf-tools/scripts/fill.py",
      "pdf-tools/examples/nested/SKILL.md",
      "brand/SKILL.md",
      "document-skills/docx/SKILL.md",
      "document-skills/xlsx/SKILL.md",
      "document-skills/xlsx/recalc.py",
      "document-skills/README.md",
      "collection/a/SKILL.md",
      "collection/b/SKILL.md",
      "collection/c/SKILL.md",
      ".github/skills/ci/SKILL.md",
      "agents/reviewer.md"
    ])
    expect(r.kinds).toEqual(["skill folders: 3 under collection/, 2 at the top, 2 under document-skills/"])
    expect(r.collisions).toEqual([])
    // A SKILL.md inside another skill's folder is that skill's file, not a unit of its own; hidden folders offer none.
    expect(r.units).toEqual([
      ["skills/a", "collection/a"],
      ["skills/b", "collection/b"],
      ["skills/c", "collection/c"],
      ["skills/brand", "brand"],
      ["skills/pdf-tools", "pdf-tools"],
      ["skills/docx", "document-skills/docx"],
      ["skills/xlsx", "document-skills/xlsx"],
      ["agents/reviewer", "agents/reviewer.md"]
    ])
    // Two folders of one name are a collision, reported as any other.
    expect(unitsOf(["pdf/SKILL.md", "more/pdf/SKILL.md"]).collisions).not.toEqual([])
    // Folders under agents/ and commands/ are what the common layouts read there.
    expect(unitsOf(["agents/ops/SKILL.md", "agents/ops/deploy.md", "x/SKILL.md"]).units).toEqual([
      ["skills/x", "x"],
      ["agents/ops/SKILL", "agents/ops/SKILL.md"],
      ["agents/ops/deploy", "agents/ops/deploy.md"]
    ])
    // Where skills/*/SKILL.md holds skills, or a marker names the layout, folders elsewhere are not units.
    expect(unitsOf(["skills/x/SKILL.md", "template/SKILL.md"]).units).toEqual([["skills/x", "skills/x"]])
    expect(unitsOf([".claude/skills/notes/SKILL.md", "scratch/SKILL.md"]).units).toEqual([
      ["skills/notes", ".claude/skills/notes"]
    ])
  })

  it("a repository that is one skill: its top folder, named after the source, its own hidden files left out", () => {
    const r = unitsOf(
      [
        "SKILL.md",
        "README.md",
        "scripts/run.sh",
        "examples/inner/SKILL.md",
        ".github/workflows/ci.yml",
        ".gitignore",
        "assets/.keep",
        "agents/helper.md"
      ],
      "pdf-forms"
    )
    expect(r.kinds).toEqual(["one skill: the repository's top folder, as skills/pdf-forms"])
    expect(r.units).toEqual([["skills/pdf-forms", "."]])
    // A SKILL.md below and the skill's own agents/ are its files; no common layout applies beside it.
    expect(r.files[0]).toEqual([
      "README.md",
      "SKILL.md",
      "agents/helper.md",
      "assets/.keep",
      "examples/inner/SKILL.md",
      "scripts/run.sh"
    ])
    // Without a source name, or where skills/ holds skills, the top SKILL.md is not a unit.
    expect(unitsOf(["SKILL.md", "scripts/run.sh"]).units).toEqual([])
    expect(unitsOf(["SKILL.md", "skills/x/SKILL.md"], "repo").units).toEqual([["skills/x", "skills/x"]])
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
    // Folders at the top are one group, not one line each.
    expect(describeTree(["a/SKILL.md", "b/SKILL.md", "c/SKILL.md", "docs/x/SKILL.md"])).toEqual([
      "found 3 SKILL.md under *",
      "found 1 SKILL.md under docs/x"
    ])
    expect(describeTree(["README.md", "src/index.ts"])).toEqual([
      "found no SKILL.md and no Markdown outside the top folder among 2 files"
    ])
  })
})
