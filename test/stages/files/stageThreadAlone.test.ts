// A writer thread that cannot start (its constructor throws, or it fails or exits before it is online: a limit on
// threads, a permission model without workers) leaves a large pull's small files to the staged writer's own thread:
// every file is written whole, with its mode, and nothing stays open.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { vi } from "vitest"
import { FileEntry } from "../../../src/domain/model.js"
import { makeStageWriter } from "../../../src/services/FileStateStage.js"
import { sha } from "../../support/hostile.js"
import { tempDirs } from "../../support/tree.js"

const broken = vi.hoisted(() => ({ how: "throws" as "throws" | "fails" | "exits", started: 0 }))

vi.mock("node:worker_threads", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:worker_threads")>()
  const { EventEmitter } = await import("node:events")
  /** A worker that never comes online, failing as `broken.how` says. */
  class NeverOnline extends EventEmitter {
    constructor() {
      super()
      broken.started++
      if (broken.how === "throws") throw Object.assign(new Error("no thread"), { code: "ERR_WORKER_INIT_FAILED" })
      setTimeout(() => {
        if (broken.how === "fails")
          this.emit("error", Object.assign(new Error("init failed"), { code: "ERR_WORKER_INIT_FAILED" }))
        this.emit("exit", 1)
      }, 5)
    }
    postMessage() {
      throw new Error("a batch was posted to a thread that is not online")
    }
    terminate() {
      return Promise.resolve(1)
    }
  }
  return { ...real, Worker: NeverOnline }
})

const tempDir = tempDirs("stage-alone")

describe("a writer thread that cannot start", () => {
  for (const how of ["throws", "fails", "exits"] as const) {
    it.effect(`(${how}) leaves every file to the writer's own thread, written whole`, () =>
      Effect.gen(function* () {
        broken.how = how
        broken.started = 0
        const staging = tempDir("staging")
        const writer = makeStageWriter(staging)
        const text = (i: number) => `file ${i}\n`.repeat(1 + (i % 5))
        const entryOf = (i: number) =>
          i % 97 === 0
            ? new FileEntry({ path: `l/f${i}`, size: 0, sha256: sha(`../d/f${i - 1}.md`), link: true })
            : new FileEntry({
                path: `d/f${i}.md`,
                size: text(i).length,
                sha256: sha(text(i)),
                ...(i % 7 === 0 ? { executable: true } : {})
              })
        for (let i = 1; i <= 3_000; i++) {
          const entry = entryOf(i)
          const sink = writer.open(entry)
          sink.write(Buffer.from(entry.link === true ? `../d/f${i - 1}.md` : text(i)))
          sink.commit()
          // As a pull does between the archive's chunks: it waits while the thread has too much in hand.
          if (i % 100 === 0) yield* writer.room
        }
        yield* writer.drain
        yield* writer.abandon
        expect(broken.started).toBeGreaterThan(0)
        for (let i = 1; i <= 3_000; i++) {
          const entry = entryOf(i)
          const full = nodePath.join(staging, entry.path)
          if (entry.link === true) expect(fs.readlinkSync(full)).toBe(`../d/f${i - 1}.md`)
          else {
            expect(fs.readFileSync(full, "utf8")).toBe(text(i))
            expect((fs.statSync(full).mode & 0o100) !== 0).toBe(i % 7 === 0)
          }
        }
      })
    )
  }
})
