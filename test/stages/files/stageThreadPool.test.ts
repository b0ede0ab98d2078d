// The writer thread's batch buffers are handed back and filled again: however many batches a pull makes, only a few
// buffers are ever made, and no buffer is filled again while the thread still writes from it (every file of a
// generated run of many batches is on disk byte for byte, links and modes included).
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { writerThread } from "../../../src/services/FileStateStageThread.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("stage-pool")

/** Writes a file on this thread, as the staged writer does before its thread is online; what it wrote, in order. */
const writeHere = (root: string) => {
  const written: Array<string> = []
  return {
    written,
    write: (path: string, mode: number, chunks: ReadonlyArray<Uint8Array>) => {
      const full = nodePath.join(root, path)
      fs.mkdirSync(nodePath.dirname(full), { recursive: true })
      if (mode === 0) fs.symlinkSync(Buffer.concat(chunks).toString(), full)
      else fs.writeFileSync(full, Buffer.concat(chunks), { mode, flag: "wx" })
      written.push(path)
    }
  }
}

interface Spec {
  readonly size: number
  readonly seed: number
  readonly mode: number
  /** The file arrives in this many chunks. */
  readonly parts: number
}

const specsArb = fc.array(
  fc.record({
    size: fc.oneof(fc.nat(64), fc.nat(20_000), fc.integer({ min: 100_000, max: 400_000 })),
    seed: fc.nat(255),
    mode: fc.constantFrom(0o644, 0o755, 0),
    parts: fc.integer({ min: 1, max: 3 })
  }),
  // Enough bytes for several rounds of the buffers (a batch holds 1 MiB).
  { minLength: 150, maxLength: 260 }
)

const bytesOf = (s: Spec, i: number) => {
  if (s.mode === 0) return Buffer.from(`target-${i}`)
  const b = Buffer.alloc(s.size)
  for (let at = 0; at < b.length; at++) b[at] = (s.seed + at * 7 + i * 13) & 0xff
  return b
}

/** A file's bytes in `parts` chunks, as the archive's reader hands them over. */
const chunksOf = (bytes: Buffer, parts: number) => {
  const out: Array<Uint8Array> = []
  const step = Math.max(1, Math.ceil(bytes.length / parts))
  for (let at = 0; at < bytes.length; at += step) out.push(bytes.subarray(at, at + step))
  return out
}

describe("the writer thread's batch buffers", () => {
  it.live("are few, and never filled while the thread writes from them: generated runs land byte for byte", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(specsArb, async (specs) => {
          const root = tempDir("staging")
          const here = writeHere(root)
          const thread = writerThread(root, here.write)
          const files = specs.map((s, i) => ({ path: `d${i % 4}/f${i}`, bytes: bytesOf(s, i), spec: s }))
          await Effect.runPromise(
            Effect.gen(function* () {
              for (const [i, f] of files.entries()) {
                thread.put(f.path, f.spec.mode, chunksOf(f.bytes, f.spec.parts))
                // The first file starts the thread (and is written here); every later one goes to the thread.
                if (i === 0) yield* thread.ready
                // As the pull's reading does between input chunks.
                yield* thread.room
              }
              yield* thread.drain
              yield* thread.close
            })
          )
          expect(here.written).toEqual([files[0]?.path])
          for (const f of files) {
            const full = nodePath.join(root, f.path)
            if (f.spec.mode === 0) expect(fs.readlinkSync(full)).toBe(f.bytes.toString())
            else {
              expect(fs.statSync(full).mode & 0o777).toBe(f.spec.mode & ~process.umask())
              expect(fs.readFileSync(full).equals(f.bytes)).toBe(true)
            }
          }
          // The batches' buffers came back and were filled again: one per batch in flight, one being filled.
          expect(thread.buffersMade()).toBeLessThanOrEqual(10)
        }),
        { numRuns: 3, endOnFailure: true }
      )
    )
  )

  it.live("a run of more batches than buffers makes no more of them", () =>
    Effect.gen(function* () {
      const root = tempDir("staging")
      const here = writeHere(root)
      const thread = writerThread(root, here.write)
      const body = Buffer.alloc(200_000, 7)
      // 40 MiB: forty batches.
      for (let i = 0; i < 210; i++) {
        thread.put(`f${i}`, 0o644, [body])
        if (i === 0) yield* thread.ready
        yield* thread.room
      }
      expect(here.written).toEqual(["f0"])
      yield* thread.drain
      yield* thread.close
      expect(thread.buffersMade()).toBeLessThanOrEqual(10)
      expect(fs.readdirSync(root).length).toBe(210)
      expect(fs.readFileSync(nodePath.join(root, "f209")).equals(body)).toBe(true)
    })
  )
})
