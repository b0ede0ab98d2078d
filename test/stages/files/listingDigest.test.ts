// The settled mark's fingerprint of a listing: the same listing gives the same digest, and a change to any field
// of any file (path, size, mtime, execute bit, a link's target), or a file more or less, gives another.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { WorkspaceFile } from "../../../src/services/state.js"
import { listingDigest } from "../../../src/stages/files/settledCheck.js"
import { listingArb } from "../../support/listing.js"

/** What the fingerprint stands for, one value per listing. */
const meaning = (files: ReadonlyArray<WorkspaceFile>) =>
  JSON.stringify(
    files.map((f) => [f.path, f.size, f.mtimeMs, f.link ?? null, f.link === undefined && (f.mode & 0o100) !== 0])
  )

describe("listingDigest", () => {
  it.prop(
    "equal for listings that mean the same, different for any two that do not",
    [listingArb, listingArb],
    ([a, b]) => {
      expect(listingDigest([...a])).toBe(listingDigest(a.map((f) => ({ ...f }))))
      expect(listingDigest([...a]) === listingDigest([...b])).toBe(meaning(a) === meaning(b))
    }
  )

  it.prop(
    "changes with one field of one file, or one file more",
    [
      listingArb.filter((l) => l.length > 0),
      fc.nat(),
      fc.constantFrom("size", "mtime", "mode", "path", "target", "more")
    ],
    ([listing, pick, what]) => {
      const i = pick % listing.length
      const f = listing[i] as WorkspaceFile
      const changed: WorkspaceFile =
        what === "size"
          ? { ...f, size: f.size + 1 }
          : what === "mtime"
            ? { ...f, mtimeMs: f.mtimeMs + 0.001 }
            : what === "mode"
              ? f.link === undefined
                ? { ...f, mode: f.mode ^ 0o100 }
                : { path: f.path, size: f.size, mtimeMs: f.mtimeMs, mode: 0o644 }
              : what === "path"
                ? { ...f, path: `${f.path}\u0001` }
                : what === "target"
                  ? { ...f, link: `${f.link ?? ""}x` }
                  : f
      const next =
        what === "more"
          ? [...listing, { ...f, path: `${listing.at(-1)?.path}~` }]
          : listing.map((g, j) => (j === i ? changed : g))
      expect(listingDigest(next)).not.toBe(listingDigest([...listing]))
    }
  )
})
