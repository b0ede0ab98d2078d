// The staged writer's thread ended from outside once online: the files queued when it ends, and every later one, land.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { vi } from "vitest"
import { writerThread } from "../../../src/services/FileStateStageThread.js"
import { tempDirs } from "../../support/tree.js"

/** Every thread the writer starts, so a test can end one, and whether it has exited. */
const made = vi.hoisted(() => ({
  workers: [] as Array<{
    terminate: () => Promise<number>
    once: (event: "exit", f: () => void) => unknown
    exited: boolean
  }>
}))
vi.mock("node:worker_threads", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:worker_threads")>()
  class Kept extends real.Worker {
    exited = false
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      super(...args)
      this.once("exit", () => {
        this.exited = true
      })
      made.workers.push(this)
    }
  }
  return { ...real, Worker: Kept }
})
const tempDir = tempDirs("stage-thread-ended")

const body = (i: number) => Buffer.from(`file ${i}\n`.repeat(1 + (i % 7)))

describe("the staged writer's thread, ended once online", () => {
  it.live("the files queued when it ends are held for a new thread, and they and every later file land once", () =>
    Effect.gen(function* () {
      made.workers.length = 0
      const root = tempDir("staging")
      const here: Array<string> = []
      const thread = writerThread(root, (path, mode, chunks) => {
        fs.writeFileSync(nodePath.join(root, path), Buffer.concat(chunks), { mode, flag: "wx" })
        here.push(path)
      })
      thread.put("f0", 0o644, [body(0)])
      yield* thread.ready
      // Queued in the batch being filled (fewer than a batch's 512 files), not yet posted.
      for (let i = 1; i < 100; i++) thread.put(`f${i}`, 0o644, [body(i)])
      const first = made.workers[0]
      if (first === undefined) throw new Error("no thread was started")
      yield* Effect.promise(() => first.terminate())
      yield* Effect.sleep(50)
      for (let i = 100; i < 200; i++) thread.put(`f${i}`, 0o644, [body(i)])
      yield* thread.drain
      yield* thread.close
      for (let i = 0; i < 200; i++) expect(fs.readFileSync(nodePath.join(root, `f${i}`)).equals(body(i))).toBe(true)
      expect(fs.readdirSync(root)).toHaveLength(200)
      // A second thread took the held batch (f1-f99); the files put while each thread was starting were written here.
      expect(made.workers).toHaveLength(2)
      expect(here).toEqual(["f0", ...Array.from({ length: 100 }, (_, i) => `f${100 + i}`)])
    })
  )

  /** A fresh writer in a staging folder of its own, its thread started and 600 files put (none drained yet). */
  const sixHundredPut = Effect.gen(function* () {
    made.workers.length = 0
    const root = tempDir("staging")
    const thread = writerThread(root, (path, mode, chunks) =>
      fs.writeFileSync(nodePath.join(root, path), Buffer.concat(chunks), { mode, flag: "wx" })
    )
    thread.put("f0", 0o644, [body(0)])
    yield* thread.ready
    for (let i = 1; i < 600; i++) thread.put(`f${i}`, 0o644, [body(i)])
    return { root, thread }
  })

  it.live("a drained writer lets its thread go: it ends before `close`, and a later file starts another", () =>
    Effect.gen(function* () {
      const { root, thread } = yield* sixHundredPut
      const first = made.workers[0]
      if (first === undefined) throw new Error("no thread was started")
      const exited = new Promise<void>((r) => first.once("exit", () => r()))
      yield* thread.drain
      // Ended with nothing more asked of it: no `close` is needed for its exit.
      const ended = yield* Effect.promise(() => exited).pipe(Effect.timeout("5 seconds"), Effect.either)
      expect(Either.isRight(ended)).toBe(true)
      thread.put("later", 0o644, [body(1)])
      yield* thread.ready
      for (let i = 600; i < 700; i++) thread.put(`f${i}`, 0o644, [body(i)])
      yield* thread.drain
      yield* thread.close
      for (let i = 0; i < 700; i++) expect(fs.readFileSync(nodePath.join(root, `f${i}`)).equals(body(i))).toBe(true)
      expect(fs.readFileSync(nodePath.join(root, "later")).equals(body(1))).toBe(true)
      expect(made.workers).toHaveLength(2)
    })
  )

  it.live("`close` awaits the exit of a thread `drain` let go, as well as its own", () =>
    Effect.gen(function* () {
      const { root, thread } = yield* sixHundredPut
      yield* thread.drain
      // The drained thread is ending; a later file starts another, and `close` comes at once.
      thread.put("later", 0o644, [body(1)])
      yield* thread.close
      expect(made.workers).toHaveLength(2)
      expect(made.workers.map((w) => w.exited)).toEqual([true, true])
      expect(fs.readFileSync(nodePath.join(root, "later")).equals(body(1))).toBe(true)
    })
  )

  it.live("`ready`, waited on while `close` ends a thread still starting, resolves", () =>
    Effect.gen(function* () {
      const root = tempDir("staging")
      const thread = writerThread(root, (path, mode, chunks) =>
        fs.writeFileSync(nodePath.join(root, path), Buffer.concat(chunks), { mode, flag: "wx" })
      )
      thread.put("a", 0o644, [Buffer.from("a")])
      const waiting = yield* Effect.fork(thread.ready)
      yield* thread.close
      const ready = yield* Fiber.join(waiting).pipe(Effect.timeout("2 seconds"), Effect.either)
      expect(Either.isRight(ready)).toBe(true)
      expect(fs.readFileSync(nodePath.join(root, "a"), "utf8")).toBe("a")
    })
  )
})
