// Pushes as a client sends them, made in memory for tests of the server's file store: a tree of texts, its entries,
// the upload's archive (header first, then every file set), a caller, and a migrated database of its own.
import { createHash } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { Chunk, Effect, Layer, Redacted, Stream } from "effect"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import type { TarballUnsafe } from "../../src/errors.js"
import * as Migrations from "../../src/server/migrations.js"
import { fileRecord, gzip, tarOf } from "../../src/stages/files/archive.js"
import { scopedDatabase } from "./pg.js"

export const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** A migrated database of its own for the layer's life, with a client of 4 connections. */
export const migratedDb = (name: string) =>
  Layer.unwrapScoped(
    Effect.map(scopedDatabase(name), (url) =>
      Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })))
    )
  )

export interface TreeFile {
  readonly text: string
  readonly executable: boolean
}
export type Tree = Map<string, TreeFile>

export const entryOf = (path: string, f: TreeFile) =>
  new FileEntry({
    path,
    size: Buffer.byteLength(f.text),
    sha256: sha(Buffer.from(f.text)),
    ...(f.executable ? { executable: true } : {})
  })
export const entriesOf = (tree: Tree) =>
  [...tree].map(([p, f]) => entryOf(p, f)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

const fileAt = (tree: Tree, path: string): TreeFile => {
  const f = tree.get(path)
  if (f === undefined) throw new Error(`the test's tree has no ${path} to push`)
  return f
}

/** A push of `set` and `delete` over `base` as a client sends it: the header, then every file set. */
export const push = (
  base: string | null,
  after: Tree,
  set: ReadonlyArray<string>,
  deletes: ReadonlyArray<string>
): Effect.Effect<Stream.Stream<Uint8Array>, TarballUnsafe> =>
  Effect.gen(function* () {
    const header = new UploadHeader({
      base,
      author: "test",
      set: set.map((p) => entryOf(p, fileAt(after, p))),
      delete: [...deletes],
      checksum: manifestChecksum(entriesOf(after))
    })
    const records: ReadonlyArray<Uint8Array> = [
      fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header))),
      ...set.map((p) => {
        const f = fileAt(after, p)
        return fileRecord(p, Buffer.from(f.text), f.executable)
      })
    ]
    const whole = yield* Stream.runCollect(gzip(tarOf(Stream.fromIterable(records))))
    return Stream.make(Buffer.concat(Chunk.toArray(whole)))
  })

export const caller = (tenantId: string) => ({ tenantId, tokenId: "k", label: "test" })
