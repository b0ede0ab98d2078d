import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { RemoteManifest } from "../../../src/api/files.js"
import { manifestChecksum, sha256 } from "../../../src/domain/hash.js"
import type { FileEntry } from "../../../src/domain/model.js"
import { keptOfLines, readKeptLines, splicedHead } from "../../../src/stages/files/keptLines.js"
import { keepHeadText, readKnownHead, writeKnownHead } from "../../../src/stages/files/remote.js"
import { resultingTree } from "../../../src/stages/files/upload.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("kept-lines")
const URL = "http://127.0.0.1:1/api/v1/sync"
const keptPath = (root: string) => nodePath.join(root, ".agentsync", "remote-manifest.json")

/**
 * Paths of a few segments over a small alphabet: ASCII, a newline, a two-byte, a three-byte above the surrogates
 * (U+FF01: after a surrogate pair by UTF-8 bytes, before it by UTF-16 units, the order of `<`) and a four-byte
 * character (a surrogate pair).
 */
const path = fc
  .array(
    fc.stringOf(fc.constantFrom("a", "b", "-", "\n", "\u00e9", "\uff01", "\ud835\udcb3"), {
      minLength: 1,
      maxLength: 3
    }),
    {
      minLength: 1,
      maxLength: 3
    }
  )
  .map((segments) => segments.join("/"))

const entry = (p: string, size: number, c: string, kind: string): FileEntry => ({
  path: p,
  size,
  sha256: c.repeat(64),
  ...(kind === "executable" ? { executable: true } : {}),
  ...(kind === "link" ? { link: true } : {})
})
const fields = fc.tuple(
  fc.nat({ max: 1e12 }),
  fc.constantFrom("0", "7", "f"),
  fc.constantFrom("plain", "executable", "link")
)

/** A head's tree (sorted, unique paths) and a change to it: paths set (new or existing) and deleted (held or not). */
const change = fc
  .tuple(
    fc.uniqueArray(fc.tuple(path, fields), { selector: ([p]) => p, maxLength: 25 }),
    fc.uniqueArray(fc.tuple(path, fields), { selector: ([p]) => p, maxLength: 6 }),
    fc.array(fc.oneof(path, fc.nat()), { maxLength: 6 })
  )
  .map(([rows, setRows, picks]) => {
    const entries = rows.map(([p, [s, c, k]]) => entry(p, s, c, k)).sort((x, y) => (x.path < y.path ? -1 : 1))
    const set = setRows.map(([p, [s, c, k]]) => entry(p, s, c, k)).sort((x, y) => (x.path < y.path ? -1 : 1))
    // A deletion of a held path (by index) or of any path; a path both set and deleted is set.
    const deleted = [
      ...new Set(
        picks.map((q) => (typeof q === "number" ? (entries[q % Math.max(1, entries.length)]?.path ?? "x") : q))
      )
    ].sort()
    return { entries, set, deleted }
  })

const headOf = (entries: ReadonlyArray<FileEntry>, revision = "r-1") =>
  new RemoteManifest(
    { tenant: "t-1", revision, entries, checksum: manifestChecksum(entries) },
    { disableValidation: true }
  )
const versions = (m: RemoteManifest) =>
  m.entries.map((e) => [e.path, e.size, e.sha256, e.executable === true, e.link === true])

describe("the kept head's lines (version 4)", () => {
  it.effect(
    "spliced, they are the lines of the tree the push makes: its checksum, and a copy that reads as that tree",
    () =>
      Effect.gen(function* () {
        const root = tempDir("splice")
        for (const { entries, set, deleted } of fc.sample(change, 150)) {
          yield* writeKnownHead(root, URL, headOf(entries))
          const read = yield* readKnownHead(root, URL)
          const spliced = splicedHead(read!, set, deleted)
          const tree = resultingTree(entries, set, deleted)
          expect(spliced?.checksum).toBe(manifestChecksum(tree))
          const text = keptOfLines(
            URL,
            { tenant: "t-1", checksum: spliced!.checksum, files: tree.length },
            spliced!.lines
          )
          yield* keepHeadText(root, text("r-2"))
          const next = yield* readKnownHead(root, URL)
          expect(next).toBeDefined()
          expect(versions(next!)).toEqual(versions(headOf(tree)))
          expect([next!.revision, next!.checksum]).toEqual(["r-2", manifestChecksum(tree)])
        }
      })
  )

  it("are not spliced for a head that was not read from a version 4 copy", () => {
    const entries = [entry("a", 1, "0", "plain")]
    expect(splicedHead(headOf(entries), [], ["a"])).toBeUndefined()
  })

  it.effect("a copy with any byte changed, or cut short anywhere, is not used (the head is then fetched whole)", () =>
    Effect.gen(function* () {
      const root = tempDir("damaged")
      const entries = [
        entry("agents/a.md", 3, "a", "plain"),
        entry("bin/run", 40, "b", "executable"),
        entry("docs/\u00e9", 5, "c", "link")
      ]
      yield* writeKnownHead(root, URL, headOf(entries))
      const good = fs.readFileSync(keptPath(root))
      for (let at = 0; at < good.length; at++) {
        for (const bytes of [
          Buffer.concat([good.subarray(0, at), Buffer.from([good[at]! ^ 0x01]), good.subarray(at + 1)]),
          good.subarray(0, at)
        ]) {
          fs.writeFileSync(keptPath(root), bytes)
          expect(yield* readKnownHead(root, URL)).toBeUndefined()
        }
      }
      fs.writeFileSync(keptPath(root), Buffer.concat([good, Buffer.from("x")]))
      expect(yield* readKnownHead(root, URL)).toBeUndefined()
      fs.writeFileSync(keptPath(root), good)
      expect(versions((yield* readKnownHead(root, URL))!)).toEqual(versions(headOf(entries)))
    })
  )

  /** A copy of `body` as a run would seal it: its header's checksum the body's, its seal the header's. */
  const crafted = (body: Buffer, files: number) => {
    const sealed = `{"version":4,"url":${JSON.stringify(URL)},"tenant":"t-1","revision":"r-1","checksum":"${sha256(body)}","files":${files}`
    return Buffer.concat([Buffer.from(`${sealed},"seal":"${sha256(sealed)}"}\n`), body])
  }
  const a = "a".repeat(64)

  it("a copy sealed over lines not of the checksum's own form is not used", () => {
    // The form itself reads.
    expect(readKeptLines(crafted(Buffer.from(`a\x007\x00${a}\nb\x0010\x00${a}\x00x\n`), 2), URL)).toBeDefined()
    for (const body of [
      `a\x00007\x00${a}\n`, // a size with leading zeros
      `a\x0000\x00${a}\n`,
      `a\x007\x00${"A".repeat(64)}\n`, // uppercase hex
      `a\x007\x00${"g".repeat(64)}\n`, // not hex
      `a\x007\x00${"a".repeat(30)}\n${"a".repeat(33)}\n`, // a newline among the digits
      `b\x007\x00${a}\na\x007\x00${a}\n`, // out of order
      `a\x007\x00${a}\na\x007\x00${a}\n`, // twice
      `../x\x007\x00${a}\n`, // outside the tree
      `/x\x007\x00${a}\n`,
      `a//b\x007\x00${a}\n`,
      `a\\b\x007\x00${a}\n`
    ]) {
      // Every line a line of the copy, but where a newline stands among the hash's digits.
      const files = body.includes(`\x00${"a".repeat(30)}\n`) ? 1 : body.split("\n").length - 1
      expect(readKeptLines(crafted(Buffer.from(body), files), URL), JSON.stringify(body)).toBeUndefined()
    }
  })

  it("a copy sealed over bytes that are not UTF-8 is not used (they would read back as other bytes)", () => {
    const body = Buffer.concat([Buffer.from("a"), Buffer.from([0xff]), Buffer.from(`\x007\x00${a}\n`)])
    expect(readKeptLines(crafted(body, 1), URL)).toBeUndefined()
  })

  it.effect(
    "a tree with a path UTF-8 cannot hold (a lone surrogate) keeps no copy: the head is then fetched whole",
    () =>
      Effect.gen(function* () {
        const root = tempDir("surrogate")
        yield* writeKnownHead(root, URL, headOf([entry("a", 1, "0", "plain")]))
        expect(fs.existsSync(keptPath(root))).toBe(true)
        yield* writeKnownHead(root, URL, headOf([entry("a", 1, "0", "plain"), entry("b\ud800", 1, "0", "plain")]))
        expect(fs.existsSync(keptPath(root))).toBe(false)
        // Nor is a copy spliced with such a path.
        yield* writeKnownHead(root, URL, headOf([entry("a", 1, "0", "plain")]))
        const read = yield* readKnownHead(root, URL)
        expect(splicedHead(read!, [entry("c\udc00", 1, "0", "plain")], [])).toBeUndefined()
        expect(splicedHead(read!, [entry("c", 1, "0", "plain")], [])).toBeDefined()
      })
  )
})
