// Whether a first push streams: only over an empty head with no base here, to a server that reads the trailer form
// and keeps every kind of entry sent, and for a tree the header form would not refuse up front (its entry cap less
// the lead and trailer, the other caps its manifest shows); anything else goes the full run (header form).
import { describe, expect, it } from "vitest"
import { RemoteManifest } from "../../src/api/files.js"
import { CAPS, type EntryKind, type UploadForm } from "../../src/domain/caps.js"
import { type Had, streams } from "../../src/programs/files/firstPush.js"
import type { WorkspaceFile } from "../../src/services/Workspace.js"

const server = (uploads: ReadonlyArray<UploadForm>, keeps: ReadonlyArray<EntryKind>) => ({
  serverUploadForms: () => uploads,
  serverEntryKinds: () => keeps
})
const all = server(["trailer"], ["executable", "link"])
const empty: Had = {
  head: {
    manifest: new RemoteManifest({ tenant: "t", revision: null, entries: [], checksum: "0".repeat(64) }),
    cached: false
  },
  listed: { files: [], at: 0 },
  base: { revision: null, files: new Map() }
}
const file = (path: string, extra: Partial<WorkspaceFile> = {}): WorkspaceFile => ({
  path,
  size: 4,
  mtimeMs: 0,
  mode: 0o100644,
  ...extra
})
const tree = (n: number) => Array.from({ length: n }, (_, i) => file(`content/f${String(i).padStart(6, "0")}.md`))

describe("streams", () => {
  it("streams a plain tree into an empty tenant of a server that reads the trailer form", () => {
    expect(streams(all, empty, tree(3))).toBe(true)
    expect(streams(server([], ["executable", "link"]), empty, tree(3))).toBe(false)
  })

  it("falls back at the entry cap: the lead and trailer must fit beside the files", () => {
    expect(streams(all, empty, tree(CAPS.maxEntries - 1))).toBe(true)
    expect(streams(all, empty, tree(CAPS.maxEntries))).toBe(false)
  })

  it("falls back for a tree over a cap its manifest shows", () => {
    expect(streams(all, empty, [file("content/big.bin", { size: CAPS.maxFileBytes + 1 })])).toBe(false)
    expect(streams(all, empty, [file("content/big.bin", { size: CAPS.maxFileBytes })])).toBe(true)
  })

  it("falls back where the server does not keep a kind the tree has (links, executable bits)", () => {
    const link = [file("content/a.md"), file("content/b.md", { link: "a.md" })]
    const exec = [file("content/run.sh", { mode: 0o100755 })]
    expect(streams(all, empty, link)).toBe(true)
    expect(streams(server(["trailer"], ["executable"]), empty, link)).toBe(false)
    expect(streams(all, empty, exec)).toBe(true)
    expect(streams(server(["trailer"], ["link"]), empty, exec)).toBe(false)
  })

  it("never streams with a base here or a head that is not empty", () => {
    expect(streams(all, { ...empty, base: { revision: "r1", files: new Map() } }, tree(3))).toBe(false)
    expect(streams(all, { ...empty, base: { revision: null, files: new Map([["content/x.md", "h"]]) } }, tree(3))).toBe(
      false
    )
  })
})
