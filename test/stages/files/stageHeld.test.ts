// The staged writer keeps a small file's pieces until the file is verified: it holds them (heldViews), so a download
// that reads into its slabs again never overwrites bytes that are still to be written, whichever thread writes them;
// and it lets go of every one once written, so the slabs are read into again.
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { FileEntry } from "../../../src/domain/model.js"
import { makeStageWriter, ON_THIS_THREAD } from "../../../src/services/FileStateStage.js"
import { type Holds, reusable } from "../../../src/services/heldViews.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("stage-held")

describe("the staged writer and reused slabs", () => {
  it.effect.prop(
    "every file written as sent while each slab is scribbled over once nothing holds it, and nothing held at the end",
    [
      fc.array(
        fc.record({
          size: fc.oneof(
            { arbitrary: fc.nat(40), weight: 20 },
            { arbitrary: fc.nat(9_000), weight: 20 },
            // Now and then one past the writer's small files (1 MiB), written as it arrives.
            { arbitrary: fc.integer({ min: 200_000, max: 1_100_000 }), weight: 1 }
          ),
          parts: fc.integer({ min: 1, max: 4 })
        }),
        // Past the files written on the reading's thread, so the writer thread's copies are met too.
        { minLength: 1_150, maxLength: 1_250 }
      )
    ],
    ([specs]) =>
      Effect.gen(function* () {
        const root = tempDir("tree")
        const writer = makeStageWriter(root)
        // Each piece in a slab of its own, scribbled over as the download would read into it again: once the pull it
        // came in is over (here, at once after the write) and no view of it is held.
        const slabs: Array<{ readonly bytes: Buffer; readonly holds: Holds }> = []
        let unscribbled: typeof slabs = []
        const scribble = () => {
          unscribbled = unscribbled.filter((s) => {
            if (s.holds.count > 0) return true
            s.bytes.fill(0xa5)
            return false
          })
        }
        const files = specs.map((s, i) => {
          const bytes = Buffer.alloc(s.size)
          for (let b = 0; b < bytes.length; b++) bytes[b] = (b * 7 + i) & 0xff
          return { path: `d${i % 7}/f${i}`, bytes, parts: s.parts }
        })
        let committed = 0
        for (const f of files) {
          // Past the files written on this thread the writer thread is started; the loop never hands control back,
          // so wait for it (at once, once online), or every file would go the main-thread path and the thread's copies go untested.
          if (committed >= ON_THIS_THREAD) yield* writer.threadReady
          const entry = FileEntry.make({
            path: f.path,
            size: f.bytes.length,
            sha256: createHash("sha256").update(f.bytes).digest("hex")
          })
          const sink = writer.open(entry)
          const step = Math.ceil(f.bytes.length / f.parts) || 1
          for (let at = 0; at < f.bytes.length; at += step) {
            const piece = Buffer.from(new ArrayBuffer(Math.min(step, f.bytes.length - at)))
            f.bytes.copy(piece, 0, at)
            const slab = { bytes: piece, holds: reusable(piece.buffer) }
            slabs.push(slab)
            unscribbled.push(slab)
            sink.write(piece)
            scribble()
          }
          sink.commit()
          committed++
          scribble()
        }
        // The thread really took files (copied into its batches), not only this thread.
        expect(writer.batchBuffersMade()).toBeGreaterThan(0)
        yield* writer.drain
        yield* writer.abandon
        for (const f of files) expect(fs.readFileSync(`${root}/${f.path}`).equals(f.bytes)).toBe(true)
        expect(slabs.reduce((n, s) => n + s.holds.count, 0)).toBe(0)
      }),
    { fastCheck: { numRuns: 3, endOnFailure: true } }
  )

  it.effect("a commit whose write throws lets its views go once: a second commit throws the disk's error again", () =>
    Effect.gen(function* () {
      const root = tempDir("fail")
      const writer = makeStageWriter(root)
      const bytes = Buffer.from(new ArrayBuffer(100))
      const holds = reusable(bytes.buffer)
      const entry = FileEntry.make({ path: "d/f", size: 100, sha256: createHash("sha256").update(bytes).digest("hex") })
      const sink = writer.open(entry)
      // Already there: the writer's `wx` open fails.
      fs.mkdirSync(`${root}/d`, { recursive: true })
      fs.writeFileSync(`${root}/d/f`, "x")
      sink.write(bytes)
      expect(holds.count).toBe(1)
      expect(() => sink.commit()).toThrow(/EEXIST/)
      expect(holds.count).toBe(0)
      // Nothing left to release: not heldViews' double-release defect.
      expect(() => sink.commit()).toThrow(/EEXIST/)
      expect(holds.count).toBe(0)
      yield* writer.abandon
    })
  )
})
