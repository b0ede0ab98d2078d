import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import {
  discoverUnits,
  homeScanPlan,
  isWithheldHome,
  unitFromName,
  unitsFromHome,
  withholdCollisions
} from "../../../src/domain/skills/discover.js"
import {
  compileLayout,
  DEFAULT_LAYOUT,
  isExcluded,
  layoutProblem,
  memberPath
} from "../../../src/domain/skills/layout.js"
import { parseLayout, unitLinkProblem } from "../../../src/domain/skills/model.js"
import { pathMatcher, unitNameMatcher } from "../../../src/domain/skills/templates.js"

const layoutOf = (mappings: Parameters<typeof compileLayout>[0]) => Either.getOrThrow(compileLayout(mappings))

describe("layout mapping", () => {
  const defaults = layoutOf([])
  // A repository that is one skill (its top folder), before the common layouts, as detection gives it.
  const topSkill = layoutOf([{ glob: "SKILL.md", repo: ".", home: "skills/top", exclude: [".*/**", ".git*"] }])
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
    expect(unitFromName(defaults, "skills/new")).toMatchObject({
      repoRoot: "skills/new",
      homeRoot: "skills/new",
      folder: true
    })
    expect(unitFromName(defaults, "agents/ops/x")).toMatchObject({
      repoRoot: "agents/ops/x.md",
      homeRoot: "agents/ops/x.md",
      folder: false
    })
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
    expect(discoverUnits(defaults, ["skills/ops/SKILL.md", "skills/ops/SKILL.md"]).units.map((u) => u.files)).toEqual([
      ["SKILL.md"]
    ])
    const segment = fc.constantFrom("a", "b", "SKILL.md", "x.md", "ops", "skills", "agents", "commands", ".github")
    fc.assert(
      fc.property(
        fc.array(
          fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/")),
          { maxLength: 30 }
        ),
        fc.constantFrom(defaults, topSkill),
        (paths, layout) => {
          const { units } = discoverUnits(layout, paths)
          const owned = units.flatMap((u) => u.files.map((f) => memberPath(u.repoRoot, f)))
          expect(new Set(owned).size).toBe(owned.length)
          for (const p of owned) expect(paths).toContain(p)
          const homes = units.map((u) => u.homeRoot)
          expect(new Set(homes).size).toBe(homes.length)
        }
      ),
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

  it("named captures let home and repo keep different segments; exclude leaves files out as anchors and as members", () => {
    const layout = layoutOf([
      {
        glob: "plugins/{plugin}/skills/{name}/SKILL.md",
        repo: "plugins/{plugin}/skills/{name}",
        home: "skills/{name}",
        exclude: ["**/drafts/**", "*.bak"]
      },
      {
        glob: "plugins/{plugin}/agents/{name}.md",
        repo: "plugins/{plugin}/agents/{name}.md",
        home: "agents/{plugin}/{name}.md",
        exclude: ["README.md"]
      }
    ])
    const { units, collisions } = discoverUnits(layout, [
      "plugins/ops/skills/deploy/SKILL.md",
      "plugins/ops/skills/deploy/drafts/idea.md",
      "plugins/ops/skills/deploy/old.bak",
      "plugins/ops/skills/deploy/run.sh",
      "plugins/ops/agents/README.md",
      "plugins/ops/agents/oncall.md",
      "plugins/review/agents/oncall.md"
    ])
    expect(collisions).toEqual([])
    expect(units.map((u) => [u.name, u.repoRoot, u.homeRoot, u.files])).toEqual([
      ["skills/deploy", "plugins/ops/skills/deploy", "skills/deploy", ["SKILL.md", "run.sh"]],
      ["agents/ops/oncall", "plugins/ops/agents/oncall.md", "agents/ops/oncall.md", [""]],
      ["agents/review/oncall", "plugins/review/agents/oncall.md", "agents/review/oncall.md", [""]]
    ])
    expect(isExcluded(layout, units[0]!, "drafts/x.md")).toBe(true)
    expect(isExcluded(layout, units[0]!, "notes.md")).toBe(false)
    // The skill's home drops {plugin}: it cannot be read backwards, the agents' can.
    expect(unitFromName(layout, "skills/deploy")).toBeUndefined()
    expect(unitFromName(layout, "agents/ops/pager")).toMatchObject({
      repoRoot: "plugins/ops/agents/pager.md",
      homeRoot: "agents/ops/pager.md"
    })
  })

  it("two repo units on one home path, or one inside the other's folder, are a collision naming both", () => {
    const layout = layoutOf([
      { glob: "packs/{pack}/{name}/SKILL.md", repo: "packs/{pack}/{name}", home: "skills/{name}" }
    ])
    const found = discoverUnits(layout, ["packs/a/pdf/SKILL.md", "packs/b/pdf/SKILL.md", "packs/b/other/SKILL.md"])
    expect(found.units.map((u) => u.repoRoot)).toEqual(["packs/a/pdf", "packs/b/other"])
    expect(found.collisions).toEqual([
      {
        home: "skills/pdf",
        first: "packs/a/pdf",
        firstHome: "skills/pdf",
        second: "packs/b/pdf",
        unit: { name: "skills/pdf", repoRoot: "packs/b/pdf", homeRoot: "skills/pdf", folder: true, mapping: 0 }
      }
    ])
    const nested = layoutOf([
      { glob: "a/*/SKILL.md", repo: "a/*", home: "skills/*" },
      { glob: "b/*.md", repo: "b/*.md", home: "skills/x/*.md" }
    ])
    expect(discoverUnits(nested, ["a/x/SKILL.md", "b/y.md"]).collisions).toEqual([
      {
        home: "skills/x/y.md",
        first: "a/x",
        firstHome: "skills/x",
        second: "b/y.md",
        unit: { name: "skills/x/y", repoRoot: "b/y.md", homeRoot: "skills/x/y.md", folder: false, mapping: 1 }
      }
    ])
  })

  it("a unit below a file unit's home path is a collision too, either way round: nothing can be put below a file", () => {
    // A marketplace whose plugin folder is named like an agent file of the common layout.
    const layout = layoutOf([
      { glob: "plugins/{p}/agents/{name}.md", repo: "plugins/{p}/agents/{name}.md", home: "agents/{p}/{name}.md" },
      { glob: "agents/*.md", repo: "agents/*.md", home: "agents/*.md" }
    ])
    const paths = ["plugins/x.md/agents/y.md", "agents/x.md", "agents/z.md"]
    const found = discoverUnits(layout, paths)
    expect(found.units.map((u) => u.homeRoot)).toEqual(["agents/x.md/y.md", "agents/z.md"])
    expect(found.collisions.map((c) => [c.first, c.second, c.home])).toEqual([
      ["plugins/x.md/agents/y.md", "agents/x.md", "agents/x.md"]
    ])
    const reversed = layoutOf([...layout.mappings].reverse().map((m) => m.mapping))
    expect(discoverUnits(reversed, paths).collisions.map((c) => [c.first, c.second])).toEqual([
      ["agents/x.md", "plugins/x.md/agents/y.md"]
    ])
    // Withheld, the group holds both units as the layout placed them: their own names, homes, and file units.
    expect(withholdCollisions(found).withheld).toEqual([
      {
        home: "agents/x.md/y.md",
        units: [
          {
            name: "agents/x.md/y",
            repoRoot: "plugins/x.md/agents/y.md",
            homeRoot: "agents/x.md/y.md",
            folder: false,
            mapping: 0
          },
          { name: "agents/x", repoRoot: "agents/x.md", homeRoot: "agents/x.md", folder: false, mapping: 1 }
        ]
      }
    ])
  })

  it("withheld: every unit below a file unit's home path is left out with it, not only the first found", () => {
    // Only the first unit below agents/x.md was named by the collision; agents/x.md/b.md was deployed.
    const layout = layoutOf([
      { glob: "plugins/{p}/agents/{name}.md", repo: "plugins/{p}/agents/{name}.md", home: "agents/{p}/{name}.md" },
      { glob: "agents/*.md", repo: "agents/*.md", home: "agents/*.md" }
    ])
    const paths = ["plugins/x.md/agents/a.md", "plugins/x.md/agents/b.md", "agents/x.md", "agents/z.md"]
    const { units, withheld } = withholdCollisions(discoverUnits(layout, paths))
    expect(units.map((u) => u.homeRoot)).toEqual(["agents/z.md"])
    expect(withheld.map((w) => w.units.map((u) => u.homeRoot).sort())).toEqual([
      ["agents/x.md", "agents/x.md/a.md", "agents/x.md/b.md"]
    ])
  })

  it("withheld: every unit of a collision is left out, grouped by home path, and guards what lies in or above it", () => {
    const layout = layoutOf([
      { glob: "packs/{pack}/{name}/SKILL.md", repo: "packs/{pack}/{name}", home: "skills/{name}" },
      { glob: "extra/*.md", repo: "extra/*.md", home: "skills/pdf/*.md" }
    ])
    const paths = ["packs/a/pdf/SKILL.md", "packs/b/pdf/SKILL.md", "packs/c/pdf/SKILL.md", "packs/b/other/SKILL.md"]
    const { units, withheld } = withholdCollisions(discoverUnits(layout, [...paths, "extra/notes.md"]))
    expect(units.map((u) => u.repoRoot)).toEqual(["packs/b/other"])
    expect(withheld.map((w) => [w.home, w.units.map((u) => [u.name, u.repoRoot, u.folder])])).toEqual([
      [
        "skills/pdf",
        [
          ["skills/pdf", "packs/a/pdf", true],
          ["skills/pdf", "packs/b/pdf", true],
          ["skills/pdf", "packs/c/pdf", true],
          ["skills/pdf/notes", "extra/notes.md", false]
        ]
      ]
    ])
    for (const [home, name, held] of [
      ["skills/pdf", "skills/pdf", true],
      ["skills/pdf/notes.md", "skills/pdf/notes", true],
      ["elsewhere/notes.md", "skills/pdf/notes", true],
      ["skills", "skills", true],
      ["skills/pdfx", "skills/pdfx", false],
      ["skills/other", "skills/other", false]
    ] as const)
      expect([home, isWithheldHome(withheld, home, name)]).toEqual([home, held])
    // Without a collision nothing is withheld.
    const plain = discoverUnits(layout, ["packs/a/pdf/SKILL.md", "packs/b/other/SKILL.md"])
    expect(withholdCollisions(plain)).toEqual({ units: plain.units, withheld: [] })
  })

  it("a rule that does not compile names its field", () => {
    expect(layoutProblem([{ glob: "x/{a}/SKILL.md", repo: "x/{a}", home: "skills/{b}" }])).toEqual({
      index: 0,
      field: "home",
      value: "skills/{b}",
      reason: "uses {b}, which the glob does not capture"
    })
    expect(layoutProblem([{ glob: "x/{a/SKILL.md", repo: "x", home: "y" }])?.field).toBe("glob")
    expect(layoutProblem([{ glob: "x/{a}/{a}.md", repo: "x/{a}/{a}.md", home: "a/{a}.md" }])?.reason).toMatch(
      /same capture twice/
    )
    expect(layoutProblem(DEFAULT_LAYOUT)).toBeUndefined()
  })

  it("a layout file is parsed with the line of the rule that is wrong", () => {
    const text =
      "# team layout\n- glob: skills/*/SKILL.md\n  repo: skills/*\n  home: skills/*\n- glob: x/{a}.md\n  repo: x/{a}.md\n  home: y/{z}.md\n"
    const e = Either.getLeft(parseLayout("layout.yaml", text))
    expect(e.pipe((o) => (o._tag === "Some" ? o.value.message : ""))).toBe(
      'layout.yaml:7: 1.home: "y/{z}.md" uses {z}, which the glob does not capture'
    )
    expect(
      Either.getOrThrow(
        parseLayout("layout.yaml", "- {glob: a/*.md, repo: a/*.md, home: b/*.md, exclude: [README.md]}\n")
      )
    ).toEqual([{ glob: "a/*.md", repo: "a/*.md", home: "b/*.md", exclude: ["README.md"] }])
    expect(Either.isLeft(parseLayout("layout.yaml", "- {glob: ../x/*.md, repo: ../x/*.md, home: b/*.md}\n"))).toBe(true)
    // `.` is the repository's top as a unit's root, and nowhere else.
    expect(Either.isRight(parseLayout("layout.yaml", "- {glob: SKILL.md, repo: ., home: skills/mine}\n"))).toBe(true)
    expect(Either.isLeft(parseLayout("layout.yaml", "- {glob: SKILL.md, repo: ., home: .}\n"))).toBe(true)
    expect(Either.isLeft(parseLayout("layout.yaml", "- {glob: ./SKILL.md, repo: ., home: skills/mine}\n"))).toBe(true)
    // A capture would make one unit per value, each holding every file of the repository.
    expect(
      Either.getLeft(parseLayout("layout.yaml", "- {glob: '{name}/SKILL.md', repo: ., home: 'skills/{name}'}\n"))
    ).toMatchObject({ _tag: "Some" })
  })

  it("finds units that exist only in a home, where the layout maps them back to the repo", () => {
    const plan = homeScanPlan(defaults)
    expect(plan).toEqual([
      { dir: "skills", depth: 2 },
      { dir: "agents", depth: 2 },
      { dir: "commands", depth: 1 }
    ])
    const found = unitsFromHome(defaults, [
      "skills/new/SKILL.md",
      "skills/new/ref.md",
      "skills/nothing/notes.md",
      "agents/a.md",
      "agents/team/b.md",
      "agents/README.md",
      "commands/c.md",
      "commands/deep/d.md"
    ])
    expect(found.map((u) => [u.name, u.repoRoot])).toEqual([
      ["skills/new", "skills/new"],
      ["agents/a", "agents/a.md"],
      ["agents/team/b", "agents/team/b.md"],
      ["commands/c", "commands/c.md"]
    ])
  })

  it("every unit read back from its home is the unit the repo would give (round trip)", () => {
    const segment = fc.constantFrom("a", "b", "x.md", "SKILL.md", "README.md")
    fc.assert(
      fc.property(
        fc.array(
          fc
            .tuple(
              fc.constantFrom("skills", "agents", "commands", "docs"),
              fc.array(segment, { minLength: 1, maxLength: 3 })
            )
            .map(([top, s]) => `${top}/${s.join("/")}`),
          { maxLength: 20 }
        ),
        fc.boolean(),
        (listed, top) => {
          // With a SKILL.md at the top, the repository is one skill under the layout that says so.
          const paths = top ? ["SKILL.md", ...listed] : listed
          const layout = top ? topSkill : defaults
          const repo = discoverUnits(layout, paths).units
          const homePaths = repo.flatMap((u) => u.files.map((f) => (f === "" ? u.homeRoot : `${u.homeRoot}/${f}`)))
          const back = unitsFromHome(layout, homePaths)
          expect(back.map((u) => [u.name, u.repoRoot, u.homeRoot]).sort()).toEqual(
            repo.map((u) => [u.name, u.repoRoot, u.homeRoot]).sort()
          )
        }
      ),
      { numRuns: 500 }
    )
  })

  it("matches exclude globs as .gitignore does for a bare name", () => {
    expect(pathMatcher("README.md")("plugins/a/agents/README.md")).toBe(true)
    expect(pathMatcher("README.md")("plugins/a/agents/NOTREADME.md")).toBe(false)
    expect(pathMatcher("**/drafts/**")("a/drafts/b/c.md")).toBe(true)
    expect(pathMatcher("**/drafts/**")("drafts/c.md")).toBe(true)
    expect(pathMatcher("a/*.md")("a/b/c.md")).toBe(false)
  })

  it("a link is part of its unit by file sync's rule: leading '..' then names, never '..' after a name", () => {
    expect(unitLinkProblem("latest.md", "reference.md")).toBeUndefined()
    expect(unitLinkProblem("scripts/ref", "../reference.md")).toBeUndefined()
    expect(unitLinkProblem("a/b/c/d/up", "../../..")).toBeUndefined()
    expect(unitLinkProblem("d/a", "..")).toBeUndefined()
    expect(unitLinkProblem("scripts/ref", "../../README.md")).toMatch(/leaves the unit/)
    expect(unitLinkProblem("a", "/etc/passwd")).toMatch(/absolute/)
    expect(unitLinkProblem("", "x")).toMatch(/leaves the unit/)
    // Lexically inside, but `up` is a link to `a`: through it the kernel climbs four folders above `a`.
    expect(unitLinkProblem("a/b/c/d/esc", "up/../../../../secret.txt")).toMatch(/'\.\.' after a name/)
    expect(unitLinkProblem("a/b", "sub/../..")).toMatch(/'\.\.' after a name/)
  })
})
