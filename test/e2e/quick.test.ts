// The small start path of help and completion (dist/quick.cjs): for every command its answer is the CLI's byte for
// byte, and it leaves every other run to the CLI. A launcher copied without the CLI bundle tells which path
// answered: a run it answers succeeds, a run it leaves to the CLI fails to find dist/cli.cjs.
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { command, main } from "../../src/cli/main.js"
import { type CommandSpec, specOf } from "../../src/cli/spec.js"
import * as RunStatus from "../../src/services/RunStatus.js"
import { BIN, cleanEnv, ensureBuilt, REPO } from "../support/cli.js"

interface Quick {
  readonly answer: (
    args: ReadonlyArray<string>,
    out: { readonly isTTY?: boolean; readonly columns?: number },
    env?: NodeJS.ProcessEnv
  ) => string | undefined
}

const tree = specOf(command)
const all = (c: CommandSpec): Array<CommandSpec> => [c, ...c.subcommands.flatMap(all)]
let quick: Quick
/** dist/bin.js and dist/quick.cjs without dist/cli.cjs. */
let lone: string

/** What the CLI's own code prints for `args` on a stdout that is (or is not) a terminal `columns` wide. */
const cli = async (args: ReadonlyArray<string>, tty: boolean, columns = 80, env: NodeJS.ProcessEnv = {}) => {
  const stdout = process.stdout as NodeJS.WriteStream & { isTTY: boolean }
  const saved = { isTTY: stdout.isTTY, columns: stdout.columns, write: stdout.write }
  const savedEnv = { NO_COLOR: process.env.NO_COLOR, TERM: process.env.TERM }
  let out = ""
  stdout.isTTY = tty
  stdout.columns = columns
  stdout.write = ((chunk: string) => {
    out += chunk
    return true
  }) as typeof stdout.write
  for (const k of ["NO_COLOR", "TERM"] as const) {
    if (env[k] === undefined) delete process.env[k]
    else process.env[k] = env[k]
  }
  try {
    const code = await Effect.runPromise(
      main(["node", "agentsync", ...args]).pipe(Effect.provideService(RunStatus.RunStatus, RunStatus.make()))
    )
    expect(code).toBe(0)
  } finally {
    Object.assign(stdout, saved)
    for (const k of ["NO_COLOR", "TERM"] as const) {
      if (savedEnv[k] === undefined) delete process.env[k]
      else process.env[k] = savedEnv[k]
    }
  }
  return out
}

/** The built launcher, or the built CLI bundle itself (`full`), with stdout on a pipe. */
const run = (dir: string, file: string, args: ReadonlyArray<string>) =>
  spawnSync(process.execPath, [join(dir, file), ...args], { env: cleanEnv({ NO_COLOR: undefined }), encoding: "utf8" })

beforeAll(() => {
  ensureBuilt()
  quick = createRequire(import.meta.url)(join(REPO, "dist/quick.cjs")) as Quick
  lone = mkdtempSync(join(tmpdir(), "agentsync-e2e-quick-"))
  copyFileSync(BIN, join(lone, "bin.js"))
  copyFileSync(join(REPO, "dist/quick.cjs"), join(lone, "quick.cjs"))
})
afterAll(() => rmSync(lone, { recursive: true, force: true }))

describe("help and completion from the small start path", () => {
  it("every command's help is the CLI's, in a pipe, with --color always and on a terminal", async () => {
    const paths = all(tree).map((c) => c.path.slice(1))
    expect(paths.length).toBeGreaterThan(40)
    for (const path of paths) {
      const args = [...path, "--help"]
      expect(quick.answer(args, { isTTY: false }), args.join(" ")).toBe(await cli(args, false))
      const always = [...args, "--color", "always"]
      const colored = await cli(always, false)
      expect(colored).toContain("\x1b[1m")
      expect(quick.answer(always, { isTTY: false })).toBe(colored)
    }
    // The colour decision and the width on a terminal: colour unless NO_COLOR or TERM=dumb, wrapped to its columns.
    for (const env of [{}, { NO_COLOR: "1" }, { TERM: "dumb" }]) {
      for (const args of [["--help"], ["skill", "source", "add", "-h"], ["deploy", "lock"], []]) {
        const page = await cli(args, true, 60, env)
        expect(quick.answer(args, { isTTY: true, columns: 60 }, env), JSON.stringify([args, env])).toBe(page)
        expect(page.includes("\x1b[")).toBe(Object.keys(env).length === 0)
      }
    }
  })

  it("completes what needs no names as the CLI does, and leaves names to it", async () => {
    for (const words of [
      [""],
      ["sk"],
      ["", "skill", "source"],
      ["--d", "files", "push"],
      ["", "local", "sync", "--kind"],
      ["agents,", "local", "diff", "--kind"],
      ["--prefer=", "skill", "sync"],
      ["", "serve", "--data"]
    ]) {
      const args = ["__complete", ...words]
      expect(quick.answer(args, {}), args.join(" ")).toBe(await cli(args, false))
    }
    expect(quick.answer(["__complete", "", "skill", "source", "remove"], {})).toBeUndefined()
    expect(quick.answer(["__complete", "", "skill", "install", "x", "--tools"], {})).toBeUndefined()
  })

  it("the built launcher answers as the built CLI, without the CLI bundle", () => {
    for (const args of [
      ["--help"],
      ["files", "push", "--help", "--color", "always"],
      ["skill", "source"],
      ["__complete", "", "deploy", "lock"],
      ["completion", "zsh"],
      ["--completions", "sh"]
    ]) {
      const full = run(REPO, "dist/cli.cjs", args)
      expect(full.status, full.stderr).toBe(0)
      const small = run(lone, "bin.js", args)
      expect({ status: small.status, stdout: small.stdout, stderr: small.stderr }, args.join(" ")).toStrictEqual({
        status: 0,
        stdout: full.stdout,
        stderr: ""
      })
    }
  })

  it("leaves usage errors, other commands and names to the CLI", () => {
    for (const args of [
      ["local", "dif"],
      ["--help", "--color", "sometimes"],
      ["status"],
      ["--version"],
      ["completion", "install"],
      ["completion", "bash", "extra"],
      ["__complete", "", "skill", "source", "remove"]
    ]) {
      const r = run(lone, "bin.js", args)
      expect(r.status, args.join(" ")).not.toBe(0)
      expect(r.stderr, args.join(" ")).toMatch(/cli\.cjs/)
    }
  })
})
