import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { compileLayout, DEFAULT_LAYOUT, discoverUnits, unitFromName, unitNameMatcher } from "../../../src/domain/skills/layout.js"

const layoutOf = (mappings: Parameters<typeof compileLayout>[0]) => Either.getOrThrow(compileLayout(mappings))

describe("layout mapping", () => {
  const defaults = layoutOf([])
  const repo = [
    "README.md",
    "skills/pdf/SKILL.md",
    "skills/pdf/scripts/fill.py",
    "skills/pdf/reference.md",
    "skills/notes/README.md",
    "agents/reviewer.md",
    "agents/ops/deployer.md",
    "agents/ops/deep/too-deep.md",
    "commands/ship.md",
    "docs/other.md"
  ]

  it("falls back to the common layouts when a source declares none", () => {
    const { units } = discoverUnits(defaults, repo)
    expect(units.map((u) => [u.name, u.repoRoot, u.homeRoot, u.folder])).toEqual([
      ["skills/pdf", "skills/pdf", "skills/pdf", true],
      ["agents/reviewer", "agents/reviewer.md", "agents/reviewer.md", false],
      ["agents/ops/deployer", "agents/ops/deployer.md", "agents/ops/deployer.md", false],
      ["commands/ship", "commands/ship.md", "commands/ship.md", false]
    ])
    // The rest of the skill's folder comes along; a folder without SKILL.md is no skill.
    expect(units[0]!.files).toEqual(["SKILL.md", "reference.md", "scripts/fill.py"])
    expect(units[1]!.files).toEqual([""])
  })

  it("first match wins, and a file inside a unit is never another unit", () => {
    const layout = layoutOf([
      { glob: "claude/skills/*/SKILL.md", repo: "claude/skills/*", home: "skills/*" },
      { glob: "claude/**/*.md", repo: "claude/**/*.md", home: "agents/**-*.md" }
    ])
    const { units } = discoverUnits(layout, ["claude/skills/a/SKILL.md", "claude/skills/a/notes.md", "claude/x/y.md"])
    expect(units.map((u) => [u.name, u.repoRoot, u.homeRoot])).toEqual([
      ["skills/a", "claude/skills/a", "skills/a"],
      ["agents/x-y", "claude/x/y.md", "agents/x-y.md"]
    ])
    expect(units[0]!.files).toEqual(["SKILL.md", "notes.md"])
  })

  it("refuses mappings whose templates do not fit their glob", () => {
    expect(Either.isLeft(compileLayout([{ glob: "skills/*/SKILL.md", repo: "skills/*", home: "skills" }]))).toBe(true)
    expect(Either.isLeft(compileLayout([{ glob: "skills/*/SKILL.md", repo: "other/*", home: "skills/*" }]))).toBe(true)
  })

  it("maps a unit name back to its roots (to adopt a unit that exists only in a home)", () => {
    expect(unitFromName(defaults, "skills/new")).toMatchObject({ repoRoot: "skills/new", homeRoot: "skills/new", folder: true })
    expect(unitFromName(defaults, "agents/ops/x")).toMatchObject({ repoRoot: "agents/ops/x.md", homeRoot: "agents/ops/x.md", folder: false })
    expect(unitFromName(defaults, "elsewhere/x")).toBeUndefined()
  })

  it("skips units whose names are unsafe, and files that could escape", () => {
    const { units, skipped } = discoverUnits(defaults, ["agents/-rf.md", "skills/ok/SKILL.md", "skills/ok/a\nb.md"])
    expect(units.map((u) => u.name)).toEqual(["skills/ok"])
    expect(units[0]!.files).toEqual(["SKILL.md"])
    expect(skipped.map((s) => s.path).sort()).toEqual(["agents/-rf.md", "skills/ok/a\nb.md"])
  })

  it("every repo file belongs to at most one unit, and each unit's home root is its own", () => {
    // A path listed twice is one file (found by this property).
    expect(discoverUnits(defaults, ["skills/ops/SKILL.md", "skills/ops/SKILL.md"]).units.map((u) => u.files)).toEqual([["SKILL.md"]])
    const segment = fc.constantFrom("a", "b", "SKILL.md", "x.md", "ops", "skills", "agents", "commands")
    fc.assert(
      fc.property(fc.array(fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/")), { maxLength: 30 }), (paths) => {
        const { units } = discoverUnits(defaults, paths)
        const owned = units.flatMap((u) => u.files.map((f) => (f === "" ? u.repoRoot : `${u.repoRoot}/${f}`)))
        expect(new Set(owned).size).toBe(owned.length)
        for (const p of owned) expect(paths).toContain(p)
        const homes = units.map((u) => u.homeRoot)
        expect(new Set(homes).size).toBe(homes.length)
      }),
      { numRuns: 1000 }
    )
  })

  it("matches unit names with globs", () => {
    expect(unitNameMatcher("**")("agents/ops/x")).toBe(true)
    expect(unitNameMatcher("skills/*")("skills/pdf")).toBe(true)
    expect(unitNameMatcher("skills/*")("agents/pdf")).toBe(false)
    expect(unitNameMatcher("skills/pdf")("skills/pdf")).toBe(true)
    expect(DEFAULT_LAYOUT).toHaveLength(4)
  })
})
