import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { RemoteManifest } from "../../../src/api/files.js"
import { manifestChecksum } from "../../../src/domain/hash.js"
import { fileVersion } from "../../../src/domain/model.js"
import { keptText, readKnownHead, writeKnownHead } from "../../../src/stages/files/remote.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("kept-head")
const URL = "http://127.0.0.1:1/api/v1/sync"
const keptPath = (root: string) => nodePath.join(root, ".agentsync", "remote-manifest.json")

/** A head's tree: unique paths sorted by path, plain files, executables and links (a link is never executable). */
const tree = fc
  .uniqueArray(
    fc.tuple(
      fc
        .array(fc.stringOf(fc.constantFrom("a", "b", "-", "\u00e9", "\ud835\udcb3"), { minLength: 1, maxLength: 3 }), {
          minLength: 1,
          maxLength: 3
        })
        .map((segments) => segments.join("/")),
      fc.nat({ max: 4095 }),
      fc.constantFrom("0", "7", "f"),
      fc.constantFrom("plain", "executable", "link", "explicit false")
    ),
    { selector: ([path]) => path, maxLength: 20 }
  )
  .map((rows) =>
    rows
      .map(([path, size, c, kind]) => ({
        path,
        size,
        sha256: c.repeat(64),
        ...(kind === "executable" ? { executable: true } : {}),
        ...(kind === "link" ? { link: true } : {}),
        ...(kind === "explicit false" ? { executable: false } : {})
      }))
      .sort((x, y) => (x.path < y.path ? -1 : 1))
  )

const head = (entries: RemoteManifest["entries"]) =>
  new RemoteManifest(
    { tenant: "t-1", revision: "r-1", entries, checksum: manifestChecksum(entries) },
    { disableValidation: true }
  )
const versions = (m: RemoteManifest) => m.entries.map((e) => [e.path, e.size, fileVersion(e)])

/** Version 3's text as its format says: the lists' JSON, its SHA-256, and both in the envelope. */
interface Kept {
  readonly tenant: string
  readonly revision: string
  readonly checksum: string
  readonly entries: RemoteManifest["entries"]
}
const keptReference = (url: string, m: Kept) => {
  const lists = JSON.stringify({
    url,
    tenant: m.tenant,
    checksum: m.checksum,
    paths: m.entries.map((e) => e.path),
    sizes: m.entries.map((e) => e.size),
    sha256: m.entries.map((e) => e.sha256),
    executable: m.entries.flatMap((e, i) => (e.executable === true ? [i] : [])),
    links: m.entries.flatMap((e, i) => (e.link === true ? [i] : [])),
    revision: m.revision
  })
  return `{"version":3,"digest":"${createHash("sha256").update(lists).digest("hex")}","kept":${lists}}`
}

/** Version 4's text as its format says: the sealed header line, then the checksum's lines in path order. */
const keptReferenceV4 = (url: string, m: Kept) => {
  const sealed = `{"version":4,"url":${JSON.stringify(url)},"tenant":${JSON.stringify(m.tenant)},"revision":${JSON.stringify(m.revision)},"checksum":"${m.checksum}","files":${m.entries.length}`
  const lines = m.entries.map(
    (e) => `${e.path}\0${e.size}\0${e.sha256}${e.link === true ? "\0l" : e.executable === true ? "\0x" : ""}\n`
  )
  return `${sealed},"seal":"${createHash("sha256").update(sealed).digest("hex")}"}\n${lines.join("")}`
}

/** Writes a version 3 copy of a head, as the releases before version 4 kept it. */
const writeV3 = (root: string, entries: RemoteManifest["entries"]) => {
  fs.mkdirSync(nodePath.dirname(keptPath(root)), { recursive: true })
  fs.writeFileSync(
    keptPath(root),
    keptReference(URL, { tenant: "t-1", revision: "r-1", entries, checksum: manifestChecksum(entries) })
  )
}

describe("the kept head manifest", () => {
  it("is written as the format's reference text, whatever the paths, URL and tenant hold", () => {
    const text = fc.string({ unit: "binary", maxLength: 8 })
    fc.assert(
      fc.property(tree, text, text, text, (entries, url, tenant, revision) => {
        const m: Kept = { tenant, revision, entries, checksum: manifestChecksum(entries) }
        expect(keptText(url, m)).toBe(keptReferenceV4(url, m))
        // The lines are the checksum's: the checksum is the SHA-256 of every byte after the header.
        const text = keptText(url, m)
        expect(
          createHash("sha256")
            .update(text.slice(text.indexOf("\n") + 1))
            .digest("hex")
        ).toBe(m.checksum)
      }),
      { numRuns: 300 }
    )
  })

  it.effect("a copy kept by an older release (version 3) reads as the same head as its version 4 copy", () =>
    Effect.gen(function* () {
      const root = tempDir("head")
      for (const entries of fc.sample(tree, 60)) {
        writeV3(root, entries)
        const old = yield* readKnownHead(root, URL)
        yield* writeKnownHead(root, URL, head(entries))
        expect(fs.readFileSync(keptPath(root), "latin1").startsWith('{"version":4,')).toBe(true)
        const now = yield* readKnownHead(root, URL)
        expect(old).toBeDefined()
        expect(now).toBeDefined()
        expect(versions(now!)).toEqual(versions(old!))
        expect([now!.tenant, now!.revision, now!.checksum]).toEqual([old!.tenant, old!.revision, old!.checksum])
      }
    })
  )

  it.effect("reads back as written: every entry's path, size, hash and kind, the tenant, revision and checksum", () =>
    Effect.gen(function* () {
      const root = tempDir("head")
      for (const entries of fc.sample(tree, 60)) {
        const written = head(entries)
        yield* writeKnownHead(root, URL, written)
        const read = yield* readKnownHead(root, URL)
        expect(read).toBeDefined()
        expect(versions(read!)).toEqual(versions(written))
        expect([read!.tenant, read!.revision, read!.checksum]).toEqual(["t-1", "r-1", written.checksum])
        // Another API never reuses it.
        expect(yield* readKnownHead(root, "http://elsewhere/api/v1/sync")).toBeUndefined()
      }
    })
  )

  it.effect("copies older releases kept as lists under their digest (version 3) and before (2, 1) still read", () =>
    Effect.gen(function* () {
      const root = tempDir("head")
      const entries = [
        { path: "agents/a.md", size: 3, sha256: "a".repeat(64) },
        { path: "bin/run", size: 4, sha256: "b".repeat(64), executable: true },
        { path: "docs/link", size: 5, sha256: "c".repeat(64), link: true }
      ]
      writeV3(root, entries)
      expect(versions((yield* readKnownHead(root, URL))!)).toEqual(versions(head(entries)))
      const text = fs.readFileSync(keptPath(root), "utf8")
      const kept = JSON.parse(text)
      expect(kept).toMatchObject({
        version: 3,
        kept: { paths: entries.map((e) => e.path), executable: [1], links: [2] }
      })
      expect(kept.digest).toBe(createHash("sha256").update(JSON.stringify(kept.kept)).digest("hex"))
      fs.writeFileSync(keptPath(root), JSON.stringify({ version: 2, ...kept.kept }))
      expect(versions((yield* readKnownHead(root, URL))!)).toEqual(versions(head(entries)))
      const manifest = { tenant: "t-1", revision: "r-1", entries, checksum: manifestChecksum(entries) }
      fs.writeFileSync(keptPath(root), JSON.stringify({ version: 1, url: URL, manifest }))
      expect(versions((yield* readKnownHead(root, URL))!)).toEqual(versions(head(entries)))
    })
  )

  it.effect(
    "a damaged copy is not used: lists that do not line up, a flag past the end, a changed size, a bad path",
    () =>
      Effect.gen(function* () {
        const root = tempDir("head")
        const entries = [
          { path: "agents/a.md", size: 3, sha256: "a".repeat(64) },
          { path: "bin/run", size: 4, sha256: "b".repeat(64), executable: true }
        ]
        writeV3(root, entries)
        const good = { version: 2, ...JSON.parse(fs.readFileSync(keptPath(root), "utf8")).kept }
        const damaged = [
          { ...good, sizes: [3] },
          { ...good, sha256: [...good.sha256, "c".repeat(64)] },
          { ...good, executable: [2] },
          { ...good, links: [-1] },
          { ...good, sizes: [3, 5] },
          { ...good, executable: [] },
          {
            ...good,
            paths: ["../a.md", "bin/run"],
            // Adding up: only the entry rules refuse it.
            checksum: manifestChecksum([{ ...entries[0]!, path: "../a.md" }, entries[1]!])
          },
          { ...good, sizes: [3, 1.5] },
          { ...good, version: 3 }
        ]
        for (const d of damaged) {
          fs.writeFileSync(keptPath(root), JSON.stringify(d))
          expect(yield* readKnownHead(root, URL)).toBeUndefined()
        }
        fs.writeFileSync(keptPath(root), JSON.stringify(good))
        expect(yield* readKnownHead(root, URL)).toBeDefined()
      })
  )

  it.effect("a version 3 copy whose kept text is not what its digest says is not used, whatever byte changed", () =>
    Effect.gen(function* () {
      const root = tempDir("head")
      for (const entries of fc.sample(
        tree.filter((t) => t.length > 0),
        20
      )) {
        writeV3(root, entries)
        const text = fs.readFileSync(keptPath(root), "utf8")
        // Each change keeps the text JSON that reads as lists (a size, a hash, a flag, the revision): only the
        // digest refuses it.
        const at = text.indexOf('"kept":')
        const changed = [
          text.slice(0, at) + text.slice(at).replace('"sizes":[', '"sizes":[1'),
          text.slice(0, at) +
            text.slice(at).replace(/"sha256":\["(.)/, (_m, c) => `"sha256":["${c === "0" ? "7" : "0"}`),
          text.slice(0, at) + text.slice(at).replace('"executable":[', '"executable":[0,'),
          text.replace('"revision":"r-1"', '"revision":"r-2"'),
          text.replace(/"digest":"(.)/, (_m, c) => `"digest":"${c === "0" ? "1" : "0"}`),
          text.slice(0, -1)
        ]
        for (const d of changed) {
          expect(d).not.toBe(text)
          fs.writeFileSync(keptPath(root), d)
          expect(yield* readKnownHead(root, URL)).toBeUndefined()
        }
        fs.writeFileSync(keptPath(root), text)
        expect(yield* readKnownHead(root, URL)).toBeDefined()
      }
    })
  )
})
