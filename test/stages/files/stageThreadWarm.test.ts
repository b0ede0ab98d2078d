// A writer thread started ahead (`warmWriterThread`): the next staged writer takes it and sends it its files from the
// first (no thousand files on this thread first), every file on disk as sent; one no writer takes is ended with its
// scope; and while one is parked, a second is not started.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { FileEntry } from "../../../src/domain/model.js"
import { makeStageWriter, ON_THIS_THREAD, warmWriterThread } from "../../../src/services/FileStateStage.js"
import { warmThreadEvents, warmThreadParked } from "../../../src/services/FileStateStageThread.js"
import { sha } from "../../support/hostile.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("stage-warm")

const files = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const bytes = Buffer.from(`file ${i}\n`.repeat(1 + (i % 7)))
    return { entry: new FileEntry({ path: `d${i % 13}/f${i}.txt`, size: bytes.length, sha256: sha(bytes) }), bytes }
  })

describe("a writer thread started ahead", () => {
  it.live("is taken by the next writer, which sends it files from the first: all on disk as sent", () =>
    Effect.gen(function* () {
      yield* warmWriterThread
      expect(warmThreadParked()).toBe(true)
      // Online before the first file, as it is when a pull's plan and the download's first bytes take longer: waited
      // for, not slept for (a loaded machine may take any time to boot it).
      const events = warmThreadEvents()
      expect(events).toBeDefined()
      yield* Effect.promise(() => events!.online)
      const root = tempDir("taken")
      const writer = makeStageWriter(root)
      const all = files(ON_THIS_THREAD / 2)
      for (const { entry, bytes } of all) {
        const sink = writer.open(entry)
        sink.write(bytes)
        sink.commit()
      }
      expect(warmThreadParked()).toBe(false)
      yield* writer.drain
      // Fewer files than the writer ever sends a thread of its own: these went to the warm one.
      expect(writer.batchBuffersMade()).toBeGreaterThan(0)
      for (const { entry, bytes } of all) expect(fs.readFileSync(nodePath.join(root, entry.path))).toEqual(bytes)
      yield* writer.abandon
    }).pipe(Effect.scoped)
  )

  it.live("is ended with its scope when no writer took it, and only one is parked at a time", () =>
    Effect.gen(function* () {
      const events = yield* Effect.scoped(
        Effect.gen(function* () {
          yield* warmWriterThread
          const first = warmThreadEvents()
          yield* warmWriterThread
          expect(warmThreadParked()).toBe(true)
          expect(warmThreadEvents()?.exited).toBe(first?.exited)
          return first
        })
      )
      expect(warmThreadParked()).toBe(false)
      // The thread itself ended (an idle worker never exits by itself: its exit is the scope's doing).
      expect(events).toBeDefined()
      expect(yield* Effect.promise(() => events!.exited).pipe(Effect.timeout("30 seconds"), Effect.option)).not.toEqual(
        Option.none()
      )
      // A writer afterwards starts as without one: its first thousand files on this thread, no batch made.
      const root = tempDir("untaken")
      const writer = makeStageWriter(root)
      for (const { entry, bytes } of files(10)) {
        const sink = writer.open(entry)
        sink.write(bytes)
        sink.commit()
      }
      yield* writer.drain
      expect(writer.batchBuffersMade()).toBe(0)
      yield* writer.abandon
    })
  )
})
