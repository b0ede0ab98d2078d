// The upload forms a real server reads, as its archive policy sets them: the trailer form is refused over HTTP by a
// server started with `uploads: []`, and by one keeping no kinds of entries (which announces no form either), as a
// build before it would; a server of the default policy takes it.
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Stream } from "effect"
import { FilesRoutes, SYNC_PREFIX, UPLOAD_HEADER_ENTRY, UPLOAD_LEAD_ENTRY, UploadHeader } from "../../src/api/files.js"
import { FORMATS, UPLOAD_FORMS_HEADER } from "../../src/domain/caps.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import { fileRecord, gzip, tarOf } from "../../src/stages/files/archive.js"
import { sha } from "../support/hostile.js"
import { scopedDatabase } from "../support/pg.js"
import { scopedServer, type TestServer } from "./support.js"

class Servers extends Context.Tag("test/UploadFormServers")<
  Servers,
  { readonly reads: TestServer; readonly noForms: TestServer; readonly noKinds: TestServer }
>() {}

const servers = Layer.scoped(
  Servers,
  Effect.gen(function* () {
    const dbUrl = yield* scopedDatabase("uploadforms")
    return {
      reads: yield* scopedServer(dbUrl, { archives: { formats: FORMATS, compress: "never" } }),
      noForms: yield* scopedServer(dbUrl, { archives: { formats: FORMATS, compress: "never", uploads: [] } }),
      noKinds: yield* scopedServer(dbUrl, { archives: { formats: FORMATS, compress: "never", entries: [] } })
    }
  }).pipe(Effect.orDie)
)

/** A first push in the trailer form: the lead, one file, the trailer naming it. */
const trailerForm = () => {
  const data = Buffer.from("hello\n")
  const set = [new FileEntry({ path: "content/a.md", size: data.length, sha256: sha(data) })]
  const header = new UploadHeader({ base: null, author: "test", set, delete: [], checksum: manifestChecksum(set) })
  const records = [
    fileRecord(UPLOAD_LEAD_ENTRY, Buffer.from(JSON.stringify({ manifest: "trailer" }))),
    fileRecord("content/a.md", data),
    fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header)))
  ]
  return Effect.map(Stream.runCollect(gzip(tarOf(Stream.fromIterable(records)))), (c) => Buffer.concat([...c]))
}

/** The trailer form posted to `server` for a fresh tenant, and its manifest answer's upload forms. */
const post = (server: TestServer, name: string) =>
  Effect.gen(function* () {
    const t = yield* server.createTenant(name)
    const body = yield* trailerForm()
    const headers = { authorization: `Bearer ${Redacted.value(t.token)}` }
    return yield* Effect.promise(async () => {
      const manifest = await fetch(`${server.url}${SYNC_PREFIX}${FilesRoutes.manifest}`, { headers })
      await manifest.arrayBuffer()
      const answer = await fetch(`${server.url}${SYNC_PREFIX}${FilesRoutes.upload}`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/gzip" },
        body
      })
      return {
        announced: manifest.headers.get(UPLOAD_FORMS_HEADER),
        status: answer.status,
        body: (await answer.json()) as { _tag?: string; reason?: string; entry?: string; created?: boolean }
      }
    })
  })

layer(servers, { excludeTestServices: true })("the upload forms a server reads", (it) => {
  it.effect("the trailer form is taken by a server of the default policy, which announces it", () =>
    Effect.gen(function* () {
      const { reads } = yield* Servers
      const r = yield* post(reads, "reads")
      expect([r.announced, r.status, r.body.created]).toEqual(["trailer", 200, true])
    })
  )

  it.effect("the trailer form is refused by a server started with uploads: [], which announces none", () =>
    Effect.gen(function* () {
      const { noForms } = yield* Servers
      const r = yield* post(noForms, "no-forms")
      expect([r.announced, r.status]).toEqual([null, 422])
      expect(r.body).toMatchObject({ reason: `an upload starts with ${UPLOAD_HEADER_ENTRY}`, entry: UPLOAD_LEAD_ENTRY })
    })
  )

  it.effect("the trailer form is refused by a server keeping no kinds of entries, as a build before both", () =>
    Effect.gen(function* () {
      const { noKinds } = yield* Servers
      const r = yield* post(noKinds, "no-kinds")
      expect([r.announced, r.status]).toEqual([null, 422])
      expect(r.body).toMatchObject({ reason: `an upload starts with ${UPLOAD_HEADER_ENTRY}`, entry: UPLOAD_LEAD_ENTRY })
    })
  )
})
