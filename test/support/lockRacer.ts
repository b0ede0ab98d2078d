// Test fixture, run as its own process: for each line "go PATH" on stdin it tries to take that lock and prints
// "taken" or "held <message>"; "release" lets go of what it took; the end of stdin ends it.
import { createInterface } from "node:readline"
import { Effect, Exit, Scope } from "effect"
import * as ProcessLock from "../../src/services/ProcessLock.js"

let scope: Scope.CloseableScope | undefined
const release = async () => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  scope = undefined
}
createInterface({ input: process.stdin })
  .on("line", async (line) => {
    if (line === "release") {
      await release()
      return console.log("released")
    }
    const path = line.slice("go ".length)
    const s = Effect.runSync(Scope.make())
    const got = await Effect.runPromise(Effect.either(Scope.extend(ProcessLock.acquire(path, "race"), s)))
    if (got._tag === "Right") {
      scope = s
      console.log("taken")
    } else console.log(`held ${got.left.message}`)
  })
  .on("close", () => void release().then(() => process.exit(0)))
console.log("ready")
