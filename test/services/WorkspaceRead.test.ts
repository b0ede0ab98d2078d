// The batch read's end-of-file rule on a file system whose reads may come back short before a file's end.
import * as fs from "node:fs"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"

// Reads that return at most CAP bytes each, as FUSE with direct I/O or a network mount may.
let cap = Number.POSITIVE_INFINITY
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs")>()
  return {
    ...real,
    readSync: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null) =>
      real.readSync(fd, buffer, offset, Math.min(length, cap), position)
  }
})
const { readIntoAll } = await import("../../src/services/WorkspaceRead.js")

afterEach(() => {
  cap = Number.POSITIVE_INFINITY
})

const readOne = (root: string, size: number) => {
  const room = new Uint8Array(size + 1)
  return Effect.runSync(readIntoAll(root, [{ path: "f", into: room.subarray(0, size), room }], (p) => join(root, p)))[0]
}

describe("readIntoAll with room for one byte more", () => {
  it("tells a file longer than listed even when a short read stops exactly at the listed size", () => {
    const root = mkdtempSync(join(tmpdir(), "agentsync-read-"))
    writeFileSync(join(root, "f"), Buffer.alloc(4096 + 1, 1))
    // Reads of 1,024 bytes stop at 4,096, the size listed, though the file holds one byte more.
    cap = 1024
    expect(readOne(root, 4096)).toBe(false)
    cap = Number.POSITIVE_INFINITY
    expect(readOne(root, 4096)).toBe(false)
    expect(fs.statSync(join(root, "f")).size).toBe(4097)
  })

  it("takes a file of exactly the listed size as whole, in one read or several", () => {
    const root = mkdtempSync(join(tmpdir(), "agentsync-read-"))
    writeFileSync(join(root, "f"), Buffer.alloc(4096, 1))
    cap = 1024
    expect(readOne(root, 4096)).toBe(true)
    cap = Number.POSITIVE_INFINITY
    expect(readOne(root, 4096)).toBe(true)
    expect(readOne(root, 4097)).toBe(false)
  })
})
