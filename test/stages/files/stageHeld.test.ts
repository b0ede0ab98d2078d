// The staged writer keeps a small file's pieces until the file is verified: it holds them (heldViews), so a download
// that reads into its slabs again never overwrites bytes that are still to be written, whichever thread writes them;
// and it lets go of every one once written, so the slabs are read into again.
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { FileEntry } from "../../../src/domain/model.js"
import { makeStageWriter } from "../../../src/services/FileStateStage.js"
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
        { minLength: 1_020, maxLength: 1_100 }
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
        for (const f of files) {
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
          scribble()
        }
        yield* writer.drain
        yield* writer.abandon
        for (const f of files) expect(fs.readFileSync(`${root}/${f.path}`).equals(f.bytes)).toBe(true)
        expect(slabs.reduce((n, s) => n + s.holds.count, 0)).toBe(0)
      }),
    { fastCheck: { numRuns: 3, endOnFailure: true } }
  )
})
