import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { IoError } from "../../src/errors.js"
import { SkillSync } from "../../src/programs/skillSync.js"
import { make as liveDisk } from "../../src/services/UnitDisk.js"
import { git, isolateGit, lockedUnit, readTree, SAMPLE, tempRoot } from "../support/gitFixture.js"
import { isExec, makeWorld, read, runIn, write } from "../support/skillWorld.js"

const top = tempRoot("skillfiles")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

const quiet = { toHome: 0, toRepo: 0, conflicts: 0 }

describe("skill sync keeps every file and every bit", () => {
  it.effect("the executable bit is deployed; an edit commits no mode change; a mode change is committed as one", () => {
    const w = makeWorld(top, { ...SAMPLE, "skills/pdf/scripts/run.sh": { exec: "#!/bin/sh\necho run\n" } })
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        expect(isExec(w.claude("skills/pdf/scripts/run.sh"))).toBe(true)
        expect(isExec(w.codex("skills/pdf/scripts/run.sh"))).toBe(true)
        expect(isExec(w.claude("skills/pdf/SKILL.md"))).toBe(false)
        expect((yield* SkillSync.sync()).summary).toMatchObject(quiet)

        // An edit of the script at home: the commit changes its bytes, never its mode.
        fs.writeFileSync(w.claude("skills/pdf/scripts/run.sh"), "#!/bin/sh\necho run fast\n")
        yield* SkillSync.sync()
        expect(w.up.read("skills/pdf/scripts/run.sh")).toBe("#!/bin/sh\necho run fast\n")
        expect(w.up.mode("skills/pdf/scripts/run.sh")).toBe("100755")
        expect(git(w.up.work, "pull", "-q", "--ff-only")).toBe("")
        expect(git(w.up.work, "show", "--format=", "--summary", "HEAD")).not.toMatch(/mode/)
        expect(isExec(w.codex("skills/pdf/scripts/run.sh"))).toBe(true)

        // A mode-only change at home is shown as such and committed as a mode change.
        fs.chmodSync(w.claude("skills/pdf/scripts/run.sh"), 0o644)
        const status = yield* SkillSync.status()
        const row = status.rows.find((r) => r.unit === "skills/pdf" && r.tool === "claude")!
        expect(row.state).toBe("home changed")
        expect(row.reason).toBe("home changed: scripts/run.sh (mode)")
        yield* SkillSync.sync()
        expect(w.up.mode("skills/pdf/scripts/run.sh")).toBe("100644")
        expect(isExec(w.codex("skills/pdf/scripts/run.sh"))).toBe(false)

        // And an upstream chmod +x reaches the homes.
        w.up.commit({ "skills/pdf/scripts/run.sh": { exec: "#!/bin/sh\necho run fast\n" } })
        const down = yield* SkillSync.sync()
        expect(down.actions.find((a) => a.tool === "claude" && a.unit === "skills/pdf")?.reason).toBe(
          "repo changed: scripts/run.sh (mode)"
        )
        expect(isExec(w.claude("skills/pdf/scripts/run.sh"))).toBe(true)
        expect((yield* SkillSync.sync()).summary).toMatchObject(quiet)
      })
    )
  })

  it.effect(
    "a unit the disk cannot write (full) is skipped with the disk's error; the others deploy; its lock waits",
    () => {
      // The local disk, except that writes into one tool's home fail as a full disk does, until the space is freed.
      let full = true
      const disk = liveDisk()
      const w = makeWorld(top, SAMPLE, {
        disk: {
          ...disk,
          write: (unit) =>
            full && unit.root.startsWith(`${w.env.AGENTSYNC_TOOL_HOME_CODEX}${nodePath.sep}`)
              ? Effect.fail(
                  new IoError({
                    path: unit.root,
                    reason: "cannot write: no space left on device",
                    cause: Object.assign(new Error("ENOSPC"), { code: "ENOSPC" })
                  })
                )
              : disk.write(unit)
        }
      })
      return runIn(
        w,
        Effect.gen(function* () {
          const r = (yield* w.install).report
          const skipped = r.skipped.filter((s) => s.tool === "codex").map((s) => [s.unit, s.reason])
          expect(skipped.sort()).toEqual(
            ["agents/reviewer", "commands/ship", "skills/pdf"].map((unit) => [
              unit,
              expect.stringMatching(/: cannot write: no space left on device$/)
            ])
          )
          expect(r.applied.filter((a) => a.tool === "claude")).toHaveLength(3)
          expect(read(w.claude("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
          expect(fs.existsSync(w.codex("skills"))).toBe(false)
          expect(lockedUnit(w.lockText(), "skills/pdf")).toEqual({ claude: expect.anything() })

          // Once there is room, the next run deploys what was skipped, with nothing left over from the failed one.
          full = false
          const again = yield* SkillSync.sync()
          expect(again.applied.map((a) => a.tool)).toEqual(["codex", "codex", "codex"])
          expect(readTree(w.env.AGENTSYNC_TOOL_HOME_CODEX)).toEqual(readTree(w.env.AGENTSYNC_TOOL_HOME_CLAUDE))
          expect(lockedUnit(w.lockText(), "skills/pdf")).toEqual({
            claude: expect.anything(),
            codex: expect.anything()
          })
        })
      )
    }
  )

  it.effect(
    "a unit the repository tracks inside a folder its .gitignore names is committed from the home; new files there are not",
    () => {
      // A tracked skill under an ignored folder (`analysis/` in .gitignore, the skill force-added): git add stages its
      // edit but exits 1 naming the ignored folder, which skipped the unit on every run.
      const w = makeWorld(top, { ...SAMPLE, "skills/analysis/SKILL.md": "Audit.\n" })
      w.up.commit({ ".gitignore": "analysis/\n" })
      return runIn(
        w,
        Effect.gen(function* () {
          yield* w.install
          expect(read(w.claude("skills/analysis/SKILL.md"))).toBe("Audit.\n")
          write(w.claude("skills/analysis/SKILL.md"), "Audit the supply chain.\n")
          write(w.claude("skills/analysis/run.sh"), "#!/bin/sh\n")
          fs.chmodSync(w.claude("skills/analysis/run.sh"), 0o755)
          const r = yield* SkillSync.sync()
          expect(r.skipped).toEqual([])
          expect(r.summary).toMatchObject({ toRepo: 1, toHome: 1, conflicts: 0 })
          expect(w.up.log()[0]).toBe("sync: skills/analysis")
          expect(w.up.read("skills/analysis/SKILL.md")).toBe("Audit the supply chain.\n")
          expect(read(w.codex("skills/analysis/SKILL.md"))).toBe("Audit the supply chain.\n")
          // The new file is ignored as the folder is: neither committed nor deployed, and left in its home.
          expect(w.up.read("skills/analysis/run.sh")).toBeUndefined()
          expect(fs.existsSync(w.codex("skills/analysis/run.sh"))).toBe(false)
          expect(isExec(w.claude("skills/analysis/run.sh"))).toBe(true)
          expect((yield* SkillSync.sync()).summary).toMatchObject(quiet)
        })
      )
    }
  )

  it.effect("files the repository ignores are never committed, recorded or deleted", () => {
    const w = makeWorld(top, { ...SAMPLE, ".gitignore": "__pycache__/\n.vscode/\n" })
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        // .git/info/exclude of the cache clone and the user's global excludes count as well.
        fs.appendFileSync(nodePath.join(w.cache, ".git", "info", "exclude"), "*.local\n")
        const globalIgnore = nodePath.join(w.root, "global-ignore")
        fs.writeFileSync(globalIgnore, "*.swo\n")
        const globalConfig = process.env["GIT_CONFIG_GLOBAL"]!
        execFileSync("git", ["config", "--file", globalConfig, "core.excludesFile", globalIgnore])
        try {
          const made = [
            "skills/pdf/scripts/__pycache__/fill.cpython-312.pyc",
            "skills/pdf/.vscode/settings.json",
            "skills/pdf/notes.local",
            "skills/pdf/SKILL.md.swo"
          ]
          for (const p of made) write(w.claude(p), "generated\n")
          const before = w.up.log()
          const status = yield* SkillSync.status()
          expect(status.rows.filter((r) => r.state !== "in sync")).toEqual([])
          const r = yield* SkillSync.sync()
          expect(r.summary).toMatchObject(quiet)
          expect(w.up.log()).toEqual(before)
          expect(JSON.stringify(lockedUnit(w.lockText(), "skills/pdf"))).not.toMatch(/pycache|vscode|local|swo/)
          // An upstream edit of the same skill leaves them where they are.
          w.up.commit({ "skills/pdf/SKILL.md": "v2\n" })
          const down = yield* SkillSync.sync()
          expect(down.summary).toMatchObject({ toHome: 2, toRepo: 0, conflicts: 0 })
          for (const p of made) expect(read(w.claude(p))).toBe("generated\n")
          expect(read(w.claude("skills/pdf/SKILL.md"))).toBe("v2\n")
          // Deleted upstream with --delete: the unit's files go, the ignored ones stay.
          w.up.commit({ "skills/pdf/SKILL.md": null, "skills/pdf/scripts/fill.py": null })
          yield* SkillSync.sync({ delete: true })
          expect(fs.existsSync(w.claude("skills/pdf/SKILL.md"))).toBe(false)
          for (const p of made) expect(read(w.claude(p))).toBe("generated\n")
        } finally {
          execFileSync("git", ["config", "--file", globalConfig, "--unset", "core.excludesFile"])
        }
      })
    )
  })

  it.effect(
    "a link inside a unit is deployed and committed as a link; a link leading out is reported and left alone",
    () => {
      const w = makeWorld(top, {
        ...SAMPLE,
        "skills/pdf/reference.md": "the reference\n",
        "skills/pdf/latest.md": { link: "reference.md" },
        "skills/pdf/scripts/ref": { link: "../reference.md" },
        "skills/pdf/readme": { link: "../../README.md" },
        "skills/pdf/abs": { link: "/etc/passwd" }
      })
      return runIn(
        w,
        Effect.gen(function* () {
          const r = yield* w.install
          expect(fs.readlinkSync(w.claude("skills/pdf/latest.md"))).toBe("reference.md")
          expect(fs.readlinkSync(w.codex("skills/pdf/scripts/ref"))).toBe("../reference.md")
          expect(fs.existsSync(w.claude("skills/pdf/readme"))).toBe(false)
          expect(fs.existsSync(w.claude("skills/pdf/abs"))).toBe(false)
          expect(r.report.ignored.map((i) => i.path).sort()).toEqual(["skills/pdf/abs", "skills/pdf/readme"])
          expect(r.report.ignored[0]!.reason).toMatch(/symbolic link not deployed: its target .* absolute/)
          expect((yield* SkillSync.sync()).summary).toMatchObject(quiet)

          // A link made at home, inside the unit: committed as a link.
          fs.symlinkSync("SKILL.md", w.claude("skills/pdf/index.md"))
          // One leading out: reported, never committed, never deleted.
          fs.symlinkSync("../../../secrets.txt", w.claude("skills/pdf/leak"))
          const s = yield* SkillSync.sync()
          expect(s.summary).toMatchObject({ toRepo: 1, toHome: 1, conflicts: 0 })
          expect(w.up.mode("skills/pdf/index.md")).toBe("120000")
          expect(w.up.read("skills/pdf/index.md")).toBe("SKILL.md")
          expect(w.up.read("skills/pdf/leak")).toBeUndefined()
          expect(fs.readlinkSync(w.codex("skills/pdf/index.md"))).toBe("SKILL.md")
          expect(
            s.ignored.some((i) => i.path.endsWith("skills/pdf/leak") && /left alone: .* leaves the unit/.test(i.reason))
          ).toBe(true)
          expect(fs.readlinkSync(w.claude("skills/pdf/leak"))).toBe("../../../secrets.txt")
        })
      )
    }
  )

  it.effect("a link that climbs through another link of the unit is neither deployed nor committed: it escapes", () => {
    // `up` is a link to `a`; through it, `esc` climbs four folders above `a`: out of the unit, the skills folder
    // and the tool home. Read as text it stays inside (`a/secret.txt`).
    const w = makeWorld(top, {
      ...SAMPLE,
      "skills/pdf/a/b/c/d/up": { link: "../../.." },
      "skills/pdf/a/b/c/d/esc": { link: "up/../../../../secret.txt" }
    })
    write(nodePath.join(w.root, "secret.txt"), "not for the agent\n")
    return runIn(
      w,
      Effect.gen(function* () {
        const r = yield* w.install
        expect(fs.readlinkSync(w.claude("skills/pdf/a/b/c/d/up"))).toBe("../../..")
        expect(fs.existsSync(w.claude("skills/pdf/a/b/c/d/esc"))).toBe(false)
        expect(fs.existsSync(w.codex("skills/pdf/a/b/c/d/esc"))).toBe(false)
        expect(r.report.ignored.map((i) => [i.path, i.reason])).toEqual([
          [
            "skills/pdf/a/b/c/d/esc",
            "a symbolic link not deployed: its target up/../../../../secret.txt climbs with '..' after a name"
          ]
        ])
        expect((yield* SkillSync.sync()).summary).toMatchObject(quiet)

        // The same chain made at home does reach the secret; it is reported, never committed, never deleted.
        fs.symlinkSync("up/../../../../secret.txt", w.claude("skills/pdf/a/b/c/d/esc2"))
        expect(read(w.claude("skills/pdf/a/b/c/d/esc2"))).toBe("not for the agent\n")
        const s = yield* SkillSync.sync()
        expect(s.summary).toMatchObject(quiet)
        expect(w.up.read("skills/pdf/a/b/c/d/esc2")).toBeUndefined()
        expect(
          s.ignored.some(
            (i) => i.path.endsWith("skills/pdf/a/b/c/d/esc2") && /left alone: .* after a name/.test(i.reason)
          )
        ).toBe(true)
        expect(fs.existsSync(w.codex("skills/pdf/a/b/c/d/esc2"))).toBe(false)
        expect(fs.readlinkSync(w.claude("skills/pdf/a/b/c/d/esc2"))).toBe("up/../../../../secret.txt")
      })
    )
  })

  it.effect("--prefer keeps the losing side in a backup and names it", () => {
    const w = makeWorld(top)
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        write(w.claude("commands/ship.md"), "mine\n")
        w.up.commit({ "commands/ship.md": "theirs\n" })
        const r = yield* SkillSync.sync({ scope: "team:commands/ship", tools: ["claude"], prefer: "repo" })
        expect(read(w.claude("commands/ship.md"))).toBe("theirs\n")
        expect(r.backups).toHaveLength(1)
        expect(r.backups[0]).toMatchObject({ source: "team", unit: "commands/ship", side: "home of claude" })
        expect(read(r.backups[0]!.path)).toBe("mine\n")

        write(w.claude("skills/pdf/SKILL.md"), "home wins\n")
        w.up.commit({ "skills/pdf/SKILL.md": "repo loses\n" })
        const h = yield* SkillSync.sync({ scope: "team:skills/pdf", prefer: "home", tools: ["claude"] })
        expect(w.up.read("skills/pdf/SKILL.md")).toBe("home wins\n")
        expect(h.backups[0]).toMatchObject({ source: "team", unit: "skills/pdf", side: "repo" })
        expect(readTree(h.backups[0]!.path)).toMatchObject({
          "SKILL.md": "repo loses\n",
          "scripts/fill.py": SAMPLE["skills/pdf/scripts/fill.py"]
        })
      })
    )
  })
})
