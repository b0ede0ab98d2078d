import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SkillSync } from "../../src/programs/skillSync.js"
import { git, isolateGit, readTree, SAMPLE, tempRoot } from "../support/gitFixture.js"
import { makeWorld, read, runIn, write } from "../support/skillWorld.js"

const top = tempRoot("skillsources")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

describe("skill sources: the ref is resolved explicitly and the cache clone is checked before use", () => {
  it.effect("a remote whose HEAD names a branch that does not exist installs the ref asked for", () => {
    const w = makeWorld(top, SAMPLE, { head: "master" })
    // A second branch, so that the remote's HEAD is the only way to a default and the ref must be asked for.
    git(w.up.bare, "branch", "dev", "main")
    return runIn(
      w,
      Effect.gen(function* () {
        const r = yield* SkillSync.install({ uri: `git:${w.up.bare}`, name: "team", ref: "main", tools: ["claude"] })
        expect(r.report.errors).toEqual([])
        expect(read(w.claude("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
        write(w.claude("agents/reviewer.md"), "edited\n")
        yield* SkillSync.sync()
        expect(w.up.read("agents/reviewer.md")).toBe("edited\n")
      })
    )
  })

  it.effect("with no ref given, a source follows its remote's default branch (master here), kept as its ref", () => {
    const w = makeWorld(top, SAMPLE)
    // The upstream's only branch becomes master, which its HEAD names: no main anywhere.
    git(w.up.bare, "branch", "-m", "main", "master")
    git(w.up.bare, "symbolic-ref", "HEAD", "refs/heads/master")
    return runIn(
      w,
      Effect.gen(function* () {
        const r = yield* SkillSync.install({ uri: `git:${w.up.bare}`, name: "team", tools: ["claude"] })
        expect(r.source.ref).toBe("master")
        expect(r.report.errors).toEqual([])
        expect(read(w.claude("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
        expect(fs.readFileSync(nodePath.join(w.state, "manifest.yaml"), "utf8")).toContain("ref: master")
        // Asked once: a later install of the same source keeps it, whatever the remote's HEAD names by then.
        git(w.up.bare, "symbolic-ref", "HEAD", "refs/heads/elsewhere")
        const again = yield* SkillSync.install({ uri: "team", tools: ["codex"] })
        expect(again.source.ref).toBe("master")
        expect(read(w.codex("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
      })
    )
  })

  it.effect("with no ref given, a remote whose HEAD names none of its branches is refused naming --ref", () => {
    const w = makeWorld(top, SAMPLE, { head: "master" })
    git(w.up.bare, "branch", "dev", "main")
    const detached = nodePath.join(w.root, "detached")
    execFileSync("git", ["clone", "-q", "-b", "main", w.up.bare, detached])
    git(detached, "checkout", "-q", "-b", "other")
    git(detached, "checkout", "-q", "--detach")
    const empty = nodePath.join(w.root, "empty.git")
    execFileSync("git", ["init", "-q", "--bare", empty])
    // Tags and no branch (a release mirror): one light, one annotated (listed twice by ls-remote, peeled the second time).
    const tagged = nodePath.join(w.root, "tagged.git")
    execFileSync("git", ["init", "-q", "--bare", tagged])
    git(w.up.bare, "tag", "-a", "v2.0", "-m", "two", "main")
    git(w.up.bare, "push", "-q", tagged, "refs/heads/main:refs/tags/v1.0", "refs/tags/v2.0")
    return runIn(
      w,
      Effect.gen(function* () {
        for (const [uri, why] of [
          [`git:${w.up.bare}`, /HEAD names none of its branches \(dev, main\)/],
          [`git:${detached}`, /HEAD names none of its branches \(main, other\)/],
          [`git:${empty}`, /has no branch yet, .*; push one first, or name a branch, tag or commit with --ref$/],
          [`git:${tagged}`, /has no branch, .*; name a branch, tag or commit with --ref \(its tags: v1\.0, v2\.0\)$/]
        ] as const) {
          const added = yield* Effect.flip(SkillSync.addSource({ uri, name: "team" }))
          expect(added._tag).toBe("InvalidInput")
          expect(added.message).toMatch(why)
          expect(added.message).toContain("--ref")
          const installed = yield* Effect.flip(SkillSync.install({ uri, name: "team", tools: ["claude"] }))
          expect(installed.message).toMatch(why)
        }
        // Nothing was kept: no source, no clone, nothing deployed.
        expect(fs.existsSync(nodePath.join(w.state, "manifest.yaml"))).toBe(false)
        expect(fs.existsSync(w.cache)).toBe(false)
        expect(fs.existsSync(w.claude("skills"))).toBe(false)
        // Asked for, the branch is followed as ever.
        const r = yield* SkillSync.install({ uri: `git:${w.up.bare}`, name: "team", ref: "main", tools: ["claude"] })
        expect(r.source.ref).toBe("main")
        expect(read(w.claude("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
      })
    )
  })

  it.effect("with no ref given, a remote whose HEAD names no branch but that has one follows that one", () => {
    // A bare repository made where git's default is master, to which the user pushed one branch, trunk (not main, the
    // ref once given by default): git clone cannot check it out, but the branch meant is not in doubt.
    const w = makeWorld(top, SAMPLE, { head: "master" })
    git(w.up.bare, "branch", "-m", "main", "trunk")
    return runIn(
      w,
      Effect.gen(function* () {
        const r = yield* w.install
        expect(r.source.ref).toBe("trunk")
        expect(r.report.errors).toEqual([])
        expect(read(w.claude("skills/pdf/SKILL.md"))).toBe(SAMPLE["skills/pdf/SKILL.md"])
      })
    )
  })

  it.effect(
    "a cache clone that is not a healthy clone of the source is put aside and cloned again, with a note",
    () => {
      const w = makeWorld(top)
      return runIn(
        w,
        Effect.gen(function* () {
          yield* w.install
          const breakages: ReadonlyArray<readonly [string, () => void]> = [
            [
              "an unborn HEAD",
              () => {
                fs.rmSync(w.cache, { recursive: true })
                execFileSync("git", ["init", "-q", w.cache])
              }
            ],
            [
              "another remote",
              () => git(w.cache, "remote", "set-url", "origin", nodePath.join(w.root, "elsewhere.git"))
            ],
            [
              "an interrupted clone",
              () => {
                fs.rmSync(w.cache, { recursive: true })
                fs.mkdirSync(nodePath.join(w.cache, ".git", "objects"), { recursive: true })
              }
            ],
            [
              "a corrupt object store",
              () => {
                const objects = nodePath.join(w.cache, ".git", "objects")
                for (const d of fs.readdirSync(objects))
                  if (/^[0-9a-f]{2}$/.test(d)) fs.rmSync(nodePath.join(objects, d), { recursive: true })
                fs.rmSync(nodePath.join(objects, "pack"), { recursive: true, force: true })
              }
            ]
          ]
          for (const [what, breakIt] of breakages) {
            breakIt()
            write(w.claude("commands/ship.md"), `edited after ${what}\n`)
            const r = yield* SkillSync.sync()
            expect(r.errors, what).toEqual([])
            expect(r.notes.map((n) => n.note).join("\n"), what).toMatch(/cloned again/)
            expect(w.up.read("commands/ship.md"), what).toBe(`edited after ${what}\n`)
            expect((yield* SkillSync.sync()).notes, what).toEqual([])
          }
        })
      )
    }
  )

  it.effect(
    "a stale index.lock in the cache clone is removed when no git runs there; a live one is named in the error",
    () => {
      const w = makeWorld(top)
      return runIn(
        w,
        Effect.gen(function* () {
          yield* w.install
          const indexLock = nodePath.join(w.cache, ".git", "index.lock")
          fs.writeFileSync(indexLock, "")
          write(w.claude("agents/reviewer.md"), "edit one\n")
          const r = yield* SkillSync.sync()
          expect(r.errors).toEqual([])
          expect(r.notes.map((n) => n.note).join("\n")).toMatch(/removed a stale .*index\.lock/)
          expect(w.up.read("agents/reviewer.md")).toBe("edit one\n")

          // A git that really runs in the clone keeps its lock; the error names the file.
          fs.writeFileSync(indexLock, "")
          const live: ChildProcess = spawn("git", ["cat-file", "--batch"], {
            cwd: w.cache,
            stdio: ["pipe", "ignore", "ignore"]
          })
          try {
            yield* Effect.promise(() => new Promise<void>((resolve) => live.once("spawn", () => resolve())))
            write(w.claude("agents/reviewer.md"), "edit two\n")
            const blocked = yield* SkillSync.sync()
            expect(fs.existsSync(indexLock)).toBe(true)
            expect([...blocked.errors, ...blocked.skipped].map((s) => s.reason).join("\n")).toContain(indexLock)
            expect(w.up.read("agents/reviewer.md")).toBe("edit one\n")
          } finally {
            live.kill()
          }
          yield* Effect.promise(
            () =>
              new Promise<void>((resolve) => (live.exitCode !== null ? resolve() : live.once("exit", () => resolve())))
          )
          const after = yield* SkillSync.sync()
          expect(after.errors).toEqual([])
          expect(w.up.read("agents/reviewer.md")).toBe("edit two\n")
        })
      )
    }
  )

  it.effect(
    "a tag or a commit is deployed read-only from a clone whose HEAD is detached there; a moved tag is followed",
    () => {
      const w = makeWorld(top)
      git(w.up.work, "tag", "v1")
      git(w.up.work, "push", "-q", "origin", "v1")
      const first = git(w.up.work, "rev-parse", "HEAD")
      w.up.commit({ "agents/reviewer.md": "after v1\n" })
      return runIn(
        w,
        Effect.gen(function* () {
          const r = yield* SkillSync.install({ uri: `git:${w.up.bare}`, name: "team", ref: "v1", tools: ["claude"] })
          expect(r.report.errors).toEqual([])
          expect(read(w.claude("agents/reviewer.md"))).toBe(SAMPLE["agents/reviewer.md"])
          expect(git(w.cache, "rev-parse", "HEAD")).toBe(first)
          write(w.claude("agents/reviewer.md"), "home edit\n")
          const s = yield* SkillSync.sync()
          expect(s.summary.toRepo).toBe(0)
          expect(s.notes).toEqual([])
          git(w.up.work, "tag", "-f", "v1")
          git(w.up.work, "push", "-q", "-f", "origin", "v1")
          const moved = yield* SkillSync.sync()
          expect(moved.actions.find((a) => a.unit === "commands/ship")?.direction).toBe("NoOp")
          expect(git(w.cache, "rev-parse", "HEAD")).toBe(git(w.up.work, "rev-parse", "HEAD"))
        })
      )
    }
  )

  it.effect(
    "a local: folder in a git work tree: its ignored files are not part of units, modes and links travel both ways",
    () => {
      const w = makeWorld(top)
      const dir = nodePath.join(w.root, "dotfiles")
      fs.mkdirSync(dir, { recursive: true })
      execFileSync("git", ["init", "-q", dir])
      write(nodePath.join(dir, ".gitignore"), "__pycache__/\n")
      write(nodePath.join(dir, "skills/tool/SKILL.md"), "a tool\n")
      write(nodePath.join(dir, "skills/tool/run.py"), "print(1)\n")
      fs.chmodSync(nodePath.join(dir, "skills/tool/run.py"), 0o755)
      write(nodePath.join(dir, "skills/tool/__pycache__/run.cpython-312.pyc"), "bytecode\n")
      fs.symlinkSync("SKILL.md", nodePath.join(dir, "skills/tool/README.md"))
      return runIn(
        w,
        Effect.gen(function* () {
          yield* SkillSync.install({ uri: `local:${dir}`, name: "dots", tools: ["claude"] })
          expect(readTree(w.claude("skills/tool"))).toEqual({
            "SKILL.md": "a tool\n",
            "run.py": "print(1)\n [+x]",
            "README.md": "-> SKILL.md"
          })
          write(w.claude("skills/tool/run.py"), "print(2)\n")
          write(w.claude("skills/tool/__pycache__/run.cpython-312.pyc"), "home bytecode\n")
          const r = yield* SkillSync.sync()
          expect(r.summary.toRepo).toBe(1)
          expect(readTree(nodePath.join(dir, "skills/tool"))).toEqual({
            "SKILL.md": "a tool\n",
            "run.py": "print(2)\n [+x]",
            "README.md": "-> SKILL.md",
            "__pycache__/run.cpython-312.pyc": "bytecode\n"
          })
        })
      )
    }
  )
})
