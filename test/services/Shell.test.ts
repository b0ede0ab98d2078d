import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { layer, Shell } from "../../src/services/Shell.js"

describe("Shell", () => {
  it.effect("returns exit code, stdout and stderr; a non-zero exit is not a success of exec", () =>
    Effect.gen(function* () {
      const shell = yield* Shell
      const ok = yield* shell.exec("node", ["-e", "process.stdout.write('out'); process.stderr.write('err')"])
      expect(new TextDecoder().decode(ok.stdout)).toBe("out")
      expect(ok.stderr).toBe("err")
      const code = yield* shell.run("node", ["-e", "process.stderr.write('boom'); process.exit(7)"])
      expect(code.exitCode).toBe(7)
      const failed = yield* Effect.exit(
        shell.exec("node", ["-e", "process.stderr.write('line1\\nboom'); process.exit(3)"])
      )
      expect(Exit.isFailure(failed)).toBe(true)
      if (Exit.isFailure(failed)) {
        const error = failed.cause._tag === "Fail" ? failed.cause.error : undefined
        expect(error).toMatchObject({ _tag: "CommandFailed", exitCode: 3 })
        expect(error?.message).toMatch(/boom/)
      }
    }).pipe(Effect.provide(layer), Effect.provide(NodeContext.layer))
  )

  it.effect("passes argv verbatim: no shell ever interprets it", () =>
    Effect.gen(function* () {
      const shell = yield* Shell
      const hostile = "$(touch /tmp/agentsync-pwned); `id` | cat > x"
      const r = yield* shell.exec("node", ["-e", "process.stdout.write(process.argv[1])", hostile])
      expect(new TextDecoder().decode(r.stdout)).toBe(hostile)
      const input = yield* shell.exec("node", ["-e", "process.stdin.pipe(process.stdout)"], { stdin: "fed" })
      expect(new TextDecoder().decode(input.stdout)).toBe("fed")
    }).pipe(Effect.provide(layer), Effect.provide(NodeContext.layer))
  )

  it.effect("a program that cannot start is a CommandFailed too", () =>
    Effect.gen(function* () {
      const shell = yield* Shell
      const r = yield* Effect.flip(shell.run("agentsync-no-such-program", []))
      expect(r._tag).toBe("CommandFailed")
    }).pipe(Effect.provide(layer), Effect.provide(NodeContext.layer))
  )
})
