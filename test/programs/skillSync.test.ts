import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import { conflictOf, SkillSync } from "../../src/programs/skillSync.js"
import type { Git } from "../../src/services/Git.js"
import { SkillStore } from "../../src/services/SkillStore.js"
import { git, isolateGit, lockedUnit, SAMPLE, tempRoot } from "../support/gitFixture.js"
import { makeWorld, read, runIn, write } from "../support/skillWorld.js"

const top = tempRoot("skillsync")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

const world = () => makeWorld(top)
const run = runIn

describe("skill install and sync (real git, local bare remotes)", () => {
  it.effect("install deploys every unit to every tool and records the base; a second sync has nothing to do", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        const r = yield* w.install
        expect(r.report.summary).toMatchObject({ toHome: 6, toRepo: 0, conflicts: 0 })
        expect(read(w.claude("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
        expect(read(w.codex("skills/pdf/scripts/fill.py"))).toBe(SAMPLE["skills/pdf/scripts/fill.py"])
        expect(read(w.claude("agents/reviewer.md"))).toBe(SAMPLE["agents/reviewer.md"])
        expect(read(w.codex("commands/ship.md"))).toBe(SAMPLE["commands/ship.md"])
        expect(fs.existsSync(w.claude("README.md"))).toBe(false)
        expect(lockedUnit(w.lockText(), "skills/pdf")).toHaveProperty("claude.files")
        const again = yield* SkillSync.sync()
        expect(again.summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0, noOp: 6 })
        const status = yield* SkillSync.status()
        expect(new Set(status.rows.map((x) => x.state))).toEqual(new Set(["in sync"]))
      })
    )
  })

  it.effect("a home edit lands as a commit in the remote and reaches the other tools", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        write(w.claude("skills/pdf/SKILL.md"), "---\nname: pdf\n---\nFill PDF forms, carefully.\n")
        const status = yield* SkillSync.status()
        expect(status.rows.find((x) => x.unit === "skills/pdf" && x.tool === "claude")?.state).toBe("home changed")
        const r = yield* SkillSync.sync()
        expect(r.summary).toMatchObject({ toRepo: 1, toHome: 1, conflicts: 0 })
        expect(r.commits).toHaveLength(1)
        expect(r.commits[0]!.pushed).toBe(true)
        expect(w.up.log()[0]).toBe("sync: skills/pdf")
        expect(w.up.read("skills/pdf/SKILL.md")).toBe("---\nname: pdf\n---\nFill PDF forms, carefully.\n")
        expect(read(w.codex("skills/pdf/SKILL.md"))).toBe("---\nname: pdf\n---\nFill PDF forms, carefully.\n")
        expect((yield* SkillSync.sync()).summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0 })
      })
    )
  })

  it.effect("an upstream edit is deployed to the homes; a file removed upstream leaves the skill folder", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        w.up.commit({ "agents/reviewer.md": "You review code kindly.\n", "skills/pdf/scripts/fill.py": null })
        const status = yield* SkillSync.status()
        expect(status.rows.find((x) => x.unit === "agents/reviewer")?.state).toBe("behind upstream")
        const r = yield* SkillSync.sync()
        expect(r.summary).toMatchObject({ toHome: 4, toRepo: 0, conflicts: 0 })
        expect(read(w.claude("agents/reviewer.md"))).toBe("You review code kindly.\n")
        expect(fs.existsSync(w.codex("skills/pdf/scripts"))).toBe(false)
        expect(read(w.codex("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
      })
    )
  })

  it.effect("both sides edited: a conflict naming both hashes, nothing written; --prefer resolves", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        write(w.claude("commands/ship.md"), "Ship it (mine).\n")
        write(w.codex("commands/ship.md"), "Ship it (mine).\n")
        w.up.commit({ "commands/ship.md": "Ship it (theirs).\n" })
        const before = w.snapshot()
        const r = yield* SkillSync.sync({ scope: "team:commands/ship" })
        expect(r.summary.conflicts).toBe(2)
        const conflict = Option.getOrThrow(conflictOf(r))
        expect(conflict._tag).toBe("Conflict")
        const c = r.actions.find((a) => a.direction === "Conflict")!
        expect(c.home).not.toBe(c.repo)
        expect(conflict.items[0]).toContain(`home ${c.home}, repo ${c.repo}`)
        const after = w.snapshot()
        expect(after.claude).toEqual(before.claude)
        expect(after.codex).toEqual(before.codex)
        expect(after.remote).toEqual(before.remote)
        // The lock may record the new upstream commit, never a new base for the conflicted unit.
        expect(lockedUnit(after.lock, "commands/ship")).toEqual(lockedUnit(before.lock, "commands/ship"))

        const prefer = yield* SkillSync.sync({ scope: "team:commands/ship", prefer: "home" })
        // Both homes hold the same edit: two actions, one commit.
        expect(prefer.summary).toMatchObject({ toRepo: 2, conflicts: 0 })
        expect(prefer.commits).toHaveLength(1)
        expect(w.up.read("commands/ship.md")).toBe("Ship it (mine).\n")
        expect((yield* SkillSync.sync()).summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0 })

        write(w.claude("commands/ship.md"), "claude again\n")
        w.up.commit({ "commands/ship.md": "upstream again\n" })
        const repoWins = yield* SkillSync.sync({ prefer: "repo" })
        expect(repoWins.summary.conflicts).toBe(0)
        expect(read(w.claude("commands/ship.md"))).toBe("upstream again\n")
        expect(read(w.codex("commands/ship.md"))).toBe("upstream again\n")
      })
    )
  })

  it.effect("a dry run changes nothing, lock included, and shows the plan a real run executes", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        write(w.claude("agents/reviewer.md"), "edited at home\n")
        w.up.commit({ "commands/ship.md": "new upstream\n" })
        const before = w.snapshot()
        const dry = yield* SkillSync.sync({ dryRun: true })
        expect(dry.dryRun).toBe(true)
        expect(w.snapshot()).toEqual(before)
        const real = yield* SkillSync.sync()
        expect(real.actions).toEqual(dry.actions)
        expect(read(w.codex("agents/reviewer.md"))).toBe("edited at home\n")
      })
    )
  })

  // Live clock: the lock holder really sleeps.
  it.live("two runs never interleave: the second is refused with SyncInProgress", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        const store = yield* SkillStore
        const [held, second] = yield* Effect.all(
          [store.withLock(Effect.sleep("400 millis")), Effect.delay(Effect.flip(SkillSync.sync()), "100 millis")],
          { concurrency: 2 }
        )
        void held
        expect(second._tag).toBe("SyncInProgress")
        // Released afterwards.
        expect((yield* SkillSync.sync()).summary.conflicts).toBe(0)
      })
    )
  })

  it.effect(
    "a rejected push keeps the local commit, does not advance the lock, says how to recover, and is retried",
    () => {
      const w = world()
      return run(
        w,
        Effect.gen(function* () {
          yield* w.install
          const hook = nodePath.join(w.up.bare, "hooks", "pre-receive")
          fs.writeFileSync(hook, "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n", { mode: 0o755 })
          write(w.claude("agents/reviewer.md"), "home edit\n")
          const lockBefore = w.lockText()
          const r = yield* SkillSync.sync()
          expect(r.errors[0]?.reason).toMatch(/rejected.*git -C .* push origin main/s)
          expect(r.skipped.map((s) => s.reason)).toContain("push rejected")
          expect(w.lockText()).toBe(lockBefore)
          expect(w.up.log()[0]).toBe("initial")
          const cache = nodePath.join(w.state, "cache", "team")
          expect(git(cache, "log", "-1", "--format=%s")).toBe("sync: agents/reviewer")
          // The codex home did not receive an edit that never reached the repo.
          expect(read(w.codex("agents/reviewer.md"))).toBe(SAMPLE["agents/reviewer.md"])

          fs.rmSync(hook)
          const retry = yield* SkillSync.sync()
          expect(retry.errors).toEqual([])
          expect(w.up.log()[0]).toBe("sync: agents/reviewer")
          expect(read(w.codex("agents/reviewer.md"))).toBe("home edit\n")
          expect((yield* SkillSync.sync()).summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0 })
        })
      )
    }
  )

  it.effect("AGENTSYNC_SKIP_PUSH=1 commits in the cache clone and leaves the remote alone", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        write(w.claude("commands/ship.md"), "local only\n")
        const r = yield* SkillSync.sync().pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["AGENTSYNC_SKIP_PUSH", "1"]])))
        )
        expect(r.commits).toMatchObject([{ unit: "commands/ship", pushed: false }])
        expect(w.up.log()).toEqual(["initial"])
        expect(git(nodePath.join(w.state, "cache", "team"), "log", "-1", "--format=%s %an")).toBe(
          "sync: commands/ship agentsync"
        )
      })
    )
  })

  it.effect("a home edited between plan and apply skips that unit only", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        w.up.commit({ "agents/reviewer.md": "v2\n", "commands/ship.md": "v2\n" })
        const r = yield* SkillSync.sync({
          confirm: () =>
            Effect.sync(() => {
              write(w.claude("agents/reviewer.md"), "typed while the plan was shown\n")
              return true
            })
        })
        expect(r.skipped).toEqual([
          {
            source: "team",
            unit: "agents/reviewer",
            tool: "claude",
            reason: "the home of claude changed since the plan"
          }
        ])
        expect(read(w.claude("agents/reviewer.md"))).toBe("typed while the plan was shown\n")
        expect(read(w.codex("agents/reviewer.md"))).toBe("v2\n")
        expect(read(w.claude("commands/ship.md"))).toBe("v2\n")
        // The lock did not advance for the skipped one: the next plan sees a conflict, not a silent overwrite.
        const next = yield* SkillSync.sync({ dryRun: true })
        expect(next.actions.find((a) => a.unit === "agents/reviewer" && a.tool === "claude")?.direction).toBe(
          "Conflict"
        )
      })
    )
  })

  it.effect("a corrupt lock.yaml is a clear error naming it, and nothing is written", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        write(w.claude("agents/reviewer.md"), "edit\n")
        fs.writeFileSync(nodePath.join(w.state, "lock.yaml"), "version: 1\nsources:\n  team: [unclosed\n")
        const before = w.snapshot()
        const e = yield* Effect.flip(SkillSync.sync())
        expect(e._tag).toBe("InvalidInput")
        expect(e.message).toContain(nodePath.join(w.state, "lock.yaml"))
        expect(w.snapshot()).toEqual(before)
      })
    )
  })

  it.effect("hostile URIs, names and refs are refused before any git call", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        const attempts: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }, SkillSync | SkillStore | Git>> =
          [
            SkillSync.install({ uri: "git:--upload-pack=touch /tmp/pwned", tools: ["claude"] }),
            SkillSync.install({ uri: "git:ext::sh -c touch% /tmp/pwned", tools: ["claude"] }),
            SkillSync.install({ uri: `git:${w.up.bare}`, ref: "--force", tools: ["claude"] }),
            SkillSync.install({ uri: `git:${w.up.bare}`, name: "../escape", tools: ["claude"] }),
            SkillSync.install({ uri: `git:${w.up.bare}`, tools: ["-x"] }),
            SkillSync.install({ uri: `git:${w.up.bare}`, tools: ["claude/../../etc"] }),
            SkillSync.install({ uri: "local:../relative/../up", tools: ["claude"] }),
            SkillSync.addSource({ uri: `git:${w.up.bare}`, ref: "main\nevil" })
          ]
        for (const attempt of attempts) expect((yield* Effect.flip(attempt))._tag).toBe("InvalidInput")
        expect(fs.existsSync(nodePath.join(w.state, "cache"))).toBe(false)
        expect(fs.existsSync(nodePath.join(w.state, "manifest.yaml"))).toBe(false)
      })
    )
  })

  it.effect("a local: source is a plain folder: home edits are written into it", () => {
    const w = world()
    const dir = nodePath.join(w.root, "local-skills")
    write(nodePath.join(dir, "skills/notes/SKILL.md"), "notes v1\n")
    return run(
      w,
      Effect.gen(function* () {
        const r = yield* SkillSync.install({ uri: `local:${dir}`, tools: ["claude"] })
        expect(r.source.name).toBe("local-skills")
        expect(read(w.claude("skills/notes/SKILL.md"))).toBe("notes v1\n")
        write(w.claude("skills/notes/extra.md"), "added at home\n")
        const s = yield* SkillSync.sync()
        expect(s.summary.toRepo).toBe(1)
        expect(read(nodePath.join(dir, "skills/notes/extra.md"))).toBe("added at home\n")
        write(nodePath.join(dir, "skills/notes/SKILL.md"), "notes v2\n")
        yield* SkillSync.sync()
        expect(read(w.claude("skills/notes/SKILL.md"))).toBe("notes v2\n")
      })
    )
  })

  it.effect("a git URL pasted as it is (file://) installs like git:<url>, and is stored as one", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        const r = yield* SkillSync.install({ uri: `file://${w.up.bare}`, name: "team", tools: ["claude"] })
        expect(r.report.summary).toMatchObject({ toHome: 3, conflicts: 0 })
        expect(read(w.claude("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
        expect(w.snapshot().manifest).toContain(`uri: git:file://${w.up.bare}`)
      })
    )
  })

  it.effect("a read-only source never receives a commit; the home edit is kept", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* SkillSync.install({ uri: `git:${w.up.bare}`, name: "ro", tools: ["claude"], readOnly: true })
        write(w.claude("agents/reviewer.md"), "mine\n")
        const r = yield* SkillSync.sync()
        expect(r.summary.toRepo).toBe(0)
        expect(w.up.log()).toEqual(["initial"])
        expect(read(w.claude("agents/reviewer.md"))).toBe("mine\n")
      })
    )
  })

  it.effect("deletions propagate only with --delete", () => {
    const w = world()
    return run(
      w,
      Effect.gen(function* () {
        yield* w.install
        w.up.commit({ "commands/ship.md": null })
        const without = yield* SkillSync.sync()
        expect(without.summary.toHome).toBe(0)
        expect(fs.existsSync(w.claude("commands/ship.md"))).toBe(true)
        const withDelete = yield* SkillSync.sync({ delete: true })
        expect(withDelete.summary.toHome).toBe(2)
        expect(fs.existsSync(w.claude("commands/ship.md"))).toBe(false)
        expect(lockedUnit(w.lockText(), "commands/ship")).toBeUndefined()
      })
    )
  })

  it.effect(
    "a unit named in the manifest that exists only in a home is adopted into the repo; one not selected is not",
    () => {
      const w = world()
      return run(
        w,
        Effect.gen(function* () {
          yield* SkillSync.install({
            uri: `git:${w.up.bare}`,
            name: "team",
            tools: ["claude", "codex"],
            units: "agents/*"
          })
          write(w.claude("skills/fresh/SKILL.md"), "written at home first\n")
          write(w.claude("skills/stray/SKILL.md"), "not selected\n")
          const named = yield* SkillSync.install({ uri: "team", units: "skills/fresh", tools: ["claude", "codex"] })
          expect(named.report.actions.find((a) => a.unit === "skills/fresh")?.reason).toMatch(
            /new in the home \(skipped: --to-home only\)/
          )
          const r = yield* SkillSync.sync()
          expect(r.actions.filter((a) => a.direction === "ToRepo").map((a) => a.unit)).toEqual(["skills/fresh"])
          expect(w.up.read("skills/fresh/SKILL.md")).toBe("written at home first\n")
          expect(w.up.read("skills/stray/SKILL.md")).toBeUndefined()
          // The selection names codex for it too: the edit going to the repo reaches codex in the same run.
          expect(r.actions.find((a) => a.unit === "skills/fresh" && a.tool === "codex")?.direction).toBe("ToHome")
          expect(read(w.codex("skills/fresh/SKILL.md"))).toBe("written at home first\n")
          expect((yield* SkillSync.sync()).summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0 })
        })
      )
    }
  )
})
