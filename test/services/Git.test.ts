import * as fs from "node:fs"
import * as nodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { Git, layer as gitLayer } from "../../src/services/Git.js"
import { Shell, layer as shellLayer } from "../../src/services/Shell.js"
import { git, isolateGit, makeUpstream, tempRoot } from "../support/gitFixture.js"
import { testLayer } from "../support/testLayer.js"

const root = tempRoot("git")
isolateGit(root)
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const GitLive = gitLayer.pipe(Layer.provide(shellLayer), Layer.provide(NodeContext.layer))

/** Git over a Shell that records what it was asked to run and runs nothing. */
const recordingGit = () => {
  const calls: Array<ReadonlyArray<string>> = []
  const record = (command: string, args: ReadonlyArray<string>) =>
    Effect.sync(() => {
      calls.push([command, ...args])
      return { exitCode: 0, stdout: new Uint8Array(), stderr: "" }
    })
  return { layer: gitLayer.pipe(Layer.provide(testLayer(Shell)({ run: record, exec: record }))), calls }
}

describe("Git", () => {
  it.effect("clones, lists a tree, reads blobs and files at a commit", () =>
    Effect.gen(function* () {
      const g = yield* Git
      const up = makeUpstream(root, { "skills/a/SKILL.md": "A\n", "bin.dat": "\u0000\u0001binary" }, "read")
      const dir = nodePath.join(root, "read-clone")
      yield* g.clone(`file://${up.bare}`, dir)
      const head = Option.getOrThrow(yield* g.resolve(dir, "refs/remotes/origin/main"))
      const tree = yield* g.listTree(dir, head)
      expect(tree.map((e) => e.path).sort()).toEqual(["bin.dat", "skills/a/SKILL.md"])
      const blobs = yield* g.readBlobs(
        dir,
        tree.map((e) => e.oid)
      )
      const bin = tree.find((e) => e.path === "bin.dat")!
      expect(Buffer.from(blobs.get(bin.oid)!).toString()).toBe("\u0000\u0001binary")
      expect(new TextDecoder().decode(yield* g.showFile(dir, head, "skills/a/SKILL.md"))).toBe("A\n")
      expect(Option.isNone(yield* g.resolve(dir, "refs/remotes/origin/nope"))).toBe(true)
    }).pipe(Effect.provide(GitLive))
  )

  it.effect("commits with a fallback identity when none is configured, and pushes", () =>
    Effect.gen(function* () {
      const g = yield* Git
      const up = makeUpstream(root, { "a.md": "1\n" }, "push")
      const dir = nodePath.join(root, "push-clone")
      yield* g.clone(up.bare, dir)
      fs.writeFileSync(nodePath.join(dir, "a.md"), "2\n")
      yield* g.add(dir, ["a.md"])
      const sha = Option.getOrThrow(yield* g.commit(dir, "sync: a"))
      expect(git(dir, "log", "-1", "--format=%an <%ae>")).toBe("agentsync <agentsync@localhost>")
      expect(Option.isNone(yield* g.commit(dir, "nothing staged"))).toBe(true)
      yield* g.push(dir, "main")
      expect(up.read("a.md")).toBe("2\n")
      expect(git(up.work, "ls-remote", up.bare, "refs/heads/main").split("\t")[0]).toBe(sha)
    }).pipe(Effect.provide(GitLive))
  )

  it.effect("stages the paths it is given as names: a file named *.md stages itself alone", () =>
    Effect.gen(function* () {
      const g = yield* Git
      const up = makeUpstream(root, { "*.md": "star\n", "a.md": "1\n" }, "literal")
      const dir = nodePath.join(root, "literal-clone")
      yield* g.clone(up.bare, dir)
      git(dir, "reset", "-q", "--hard")
      fs.writeFileSync(nodePath.join(dir, "*.md"), "star 2\n")
      fs.writeFileSync(nodePath.join(dir, "a.md"), "2\n")
      yield* g.add(dir, ["*.md"])
      expect(git(dir, "diff", "--cached", "--name-only")).toBe("*.md")
    }).pipe(Effect.provide(GitLive))
  )

  it.effect("a rejected push fails with the remote's reason and leaves the local commit", () =>
    Effect.gen(function* () {
      const g = yield* Git
      const up = makeUpstream(root, { "a.md": "1\n" }, "reject")
      const dir = nodePath.join(root, "reject-clone")
      yield* g.clone(up.bare, dir)
      up.commit({ "a.md": "upstream\n" })
      fs.writeFileSync(nodePath.join(dir, "a.md"), "mine\n")
      yield* g.add(dir, ["a.md"])
      const mine = Option.getOrThrow(yield* g.commit(dir, "sync: a"))
      const error = yield* Effect.flip(g.push(dir, "main"))
      expect(error._tag).toBe("CommandFailed")
      expect(error.message).toMatch(/rejected|fetch first|non-fast-forward/)
      expect(git(dir, "rev-parse", "HEAD")).toBe(mine)
      yield* g.fetch(dir)
      expect(yield* g.isAncestor(dir, "refs/remotes/origin/main", "HEAD")).toBe(false)
    }).pipe(Effect.provide(GitLive))
  )

  it.effect("refuses hostile refs and URLs before any git call", () =>
    Effect.gen(function* () {
      const { layer, calls } = recordingGit()
      const g = yield* Effect.provide(Git, layer)
      for (const url of [
        "--upload-pack=touch /tmp/x",
        "ext::sh -c touch% /tmp/x",
        "-oProxyCommand=x",
        "https://h/x\nmore"
      ]) {
        const e = yield* Effect.flip(g.clone(url, nodePath.join(root, "never")))
        expect(e._tag).toBe("InvalidInput")
      }
      for (const ref of ["--force", "-d", "main\nevil", "a..b", "x:y"]) {
        expect((yield* Effect.flip(g.push(root, ref)))._tag).toBe("InvalidInput")
        expect((yield* Effect.flip(g.checkout(root, ref, "HEAD")))._tag).toBe("InvalidInput")
      }
      expect(calls).toEqual([])
      // And a legitimate call disables prompts and separates options from operands.
      yield* g.push(root, "main")
      expect(calls[0]).toContain("--")
      expect(calls[0]!.indexOf("--")).toBeLessThan(calls[0]!.indexOf("origin"))
    })
  )
})
