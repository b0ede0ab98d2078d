/** Test support: generated listings as the workspace's walk gives them (distinct paths in order, files and links). */
import { FastCheck as fc } from "effect"
import type { WorkspaceFile } from "../../src/services/state.js"

const fileArb: fc.Arbitrary<WorkspaceFile> = fc.oneof(
  fc.record({
    path: fc.string({ minLength: 1, maxLength: 6 }),
    size: fc.nat(1 << 20),
    mtimeMs: fc.double({ min: 0, max: 2e12, noNaN: true }),
    mode: fc.constantFrom(0o644, 0o755, 0o600, 0o700)
  }),
  fc.record({
    path: fc.string({ minLength: 1, maxLength: 6 }),
    size: fc.nat(64),
    mtimeMs: fc.double({ min: 0, max: 2e12, noNaN: true }),
    mode: fc.constant(0o777),
    link: fc.string({ maxLength: 6 }).filter((t) => !t.includes("\0"))
  })
)

/** Up to 12 files and links: distinct paths without NUL, sorted, as a listing holds them. */
export const listingArb = fc
  .uniqueArray(fileArb, { selector: (f) => f.path, maxLength: 12 })
  .map((fs) => fs.filter((f) => !f.path.includes("\0")).sort((a, b) => (a.path < b.path ? -1 : 1)))
