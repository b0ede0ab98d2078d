/**
 * The tenant server's file storage in Postgres: content-addressed blobs and file revisions (tenants and tokens:
 * server/tenants.ts). Revisions are read in `revisions.ts`, received in `upload.ts`, sent in `download.ts`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { blobReader } from "./blobRead.js"
import { blobWriter } from "./blobWrite.js"
import { makeDownload } from "./download.js"
import { revisionQueries } from "./revisions.js"
import { makeUpload } from "./upload.js"

export type { UploadOptions } from "./upload.js"

/** The store of one server process: its own cache of parsed trees over the shared database. */
export const makeFileStore = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const queries = revisionQueries(sql)
  const { loadRevision, head, manifest, revisions } = queries
  const upload = makeUpload(sql, queries, yield* blobWriter(sql))
  const download = makeDownload(yield* blobReader(sql), loadRevision)
  return { head, manifest, revisions, upload, download } as const
})

export class FileStore extends Effect.Service<FileStore>()("agentsync/server/FileStore", {
  effect: makeFileStore
}) {}
