/**
 * An upload received: its header checked before any content is read (or, in the trailer form, its trailer checked
 * against every file received before it), content stored as pending blobs as it arrives, then the new revision
 * committed in one transaction.
 */
import { randomUUID } from "node:crypto"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Exit, Option, Schema, type Stream } from "effect"
import { type Caller, NotFound, Unavailable } from "../../api/common.js"
import { UPLOAD_HEADER_ENTRY, UPLOAD_LEAD_ENTRY, UploadHeader, UploadResult } from "../../api/files.js"
import {
  type ArchiveFormat,
  CAPS,
  type Caps,
  TRANSFER,
  treeOverCaps,
  UPLOAD_FORMS,
  type UploadForm
} from "../../domain/caps.js"
import { sha256 } from "../../domain/hash.js"
import { IGNORE_FILE, isMemberPath, MEMBERSHIP } from "../../domain/membership.js"
import type { FileEntry } from "../../domain/model.js"
import { Conflict, InvalidInput, TarballUnsafe } from "../../errors.js"
import { type EntrySink, readArchive } from "../../stages/files/archive.js"
import { blobProbes } from "./blobProbe.js"
import type { BlobWriter } from "./blobWrite.js"
import type { CachedTree } from "./manifestCache.js"
import type { RevisionQueries } from "./revisions.js"
import { storageFailure, stored } from "./stored.js"
import { type Arrived, checkLead, checkTrailer, entryMismatch, kindMismatch, MAX_LEAD_BYTES } from "./trailer.js"
import { applyDelta, fileAndFolderAfter, storesWhole } from "./tree.js"
import { overCaps, totalsAfterDelta, totalsOf, treeSums, unchangedRows } from "./treeSum.js"
import { ARENA_BYTES, type ArenaPool, arenaPool, MIN_ARENA_BYTES, uploadBatches } from "./uploadBatches.js"

// No upload runs longer than the transfer deadline: a blob pending for longer belongs to none.
const ORPHAN_AGE_SECONDS = Math.ceil(TRANSFER.deadlineMs / 1000) + 600
/** The storage this server writes revisions in (see migration 10): an older server's revisions are refused. */
const STORAGE = 2

export interface UploadOptions {
  readonly idempotencyKey: string | undefined
  readonly caps?: Caps
  /** The archive formats read (default: what this Node reads). */
  readonly formats?: ReadonlyArray<ArchiveFormat>
  /** The upload forms read beyond the header form (default: all this code reads). */
  readonly uploads?: ReadonlyArray<UploadForm>
}

/** Built once: a decoder is a walk over the schema's AST, not something to redo per upload. */
/**
 * The upload's row, `$1` of tenant `$2`, and whether the tenant held any blob then. The first of the tenant's keys
 * read in the primary key's order: one index probe, whatever the statistics say. `NOT EXISTS` let the planner scan
 * the heap where it took the tenant for a big one, reading every row stored before the tenant's first.
 */
export const REGISTER = `WITH made AS (INSERT INTO uploads (id, tenant_id) VALUES ($1, $2) RETURNING id)
  SELECT (SELECT sha256 FROM blobs WHERE tenant_id = $2 ORDER BY tenant_id, sha256 LIMIT 1) IS NULL AS none`

const decodeHeaderJson = Schema.decodeUnknownEither(Schema.parseJson(UploadHeader))

/**
 * An upload's manifest decoded and checked: every path inside the one membership list (a file the client would never
 * bundle is not accepted either), and sizes within the caps. A header is checked before any content is read; a
 * trailer after every file (each of which the reader and the membership checked as it arrived).
 */
const decodeHeader = (data: Uint8Array, caps: Caps, what: "header" | "trailer"): UploadHeader => {
  const decoded = decodeHeaderJson(Buffer.from(data).toString("utf8"))
  if (decoded._tag === "Left")
    throw new TarballUnsafe({
      reason: `bad upload ${what}: ${decoded.left.message.slice(0, 300)}`,
      ...(what === "trailer" ? { entry: UPLOAD_HEADER_ENTRY } : {})
    })
  const header = decoded.right
  const outside = header.set.find((e) => !isMemberPath(e.path))
  if (outside !== undefined) throw outsideMembership(outside.path)
  const over = treeOverCaps(
    header.set.map((e) => [e.path, e.size] as const),
    caps
  )
  if (over !== undefined) throw new TarballUnsafe({ reason: `the upload would carry ${over}` })
  return header
}

/** The refusal of an entry naming content the upload sent, or the tenant holds, with another size. */
const wrongSize = (path: string) => `${path} names content of another size than its entry gives`

/** The refusal of a header, lead or trailer sent as a symbolic link (its target would be read as its content). */
const linkedManifest = (what: "header" | "lead" | "trailer") =>
  new TarballUnsafe({
    reason: `the upload ${what} sent as a symbolic link; it must be a file`,
    entry: what === "lead" ? UPLOAD_LEAD_ENTRY : UPLOAD_HEADER_ENTRY
  })

const afterTrailer = (path: string) =>
  new TarballUnsafe({ reason: `nothing may follow the upload trailer (${UPLOAD_HEADER_ENTRY})`, entry: path })

const outsideMembership = (path: string) =>
  new TarballUnsafe({ reason: `outside the bundle membership (${MEMBERSHIP.join(", ")}, ${IGNORE_FILE})`, entry: path })

/**
 * The tree an upload's manifest makes over `base` (its parent's tree; none for an empty tenant) and what the commit
 * checks of it, in the order it checks them: pure, so over an empty tenant it is made as soon as the manifest is
 * decoded (the trailer form's while its last batch is stored, the header form's before its files), not in the commit.
 */
const treeAfter = (base: CachedTree | undefined, head: UploadHeader, caps: Caps) => {
  const applied = applyDelta(base?.entries ?? [], head.set.map(stored), head.delete)
  if ("missing" in applied) return applied
  const { next } = applied
  // The totals against the caps move by the rows the push changed; so does the checksum, hashed on from the base's
  // last hash state before the first of them.
  const totals = base === undefined ? totalsOf(next) : totalsAfterDelta(base.entries, base.totals, applied.delta)
  // What every client can pull: the server never keeps a tree a client would refuse. Over an empty tenant the tree is
  // the manifest's rows (fewer, if a path came twice), which its decoding checked against the same caps.
  const over = base === undefined ? undefined : overCaps(next, totals, caps)
  const both = fileAndFolderAfter(next, applied.delta.set, base?.clean ?? true)
  const sums = treeSums(next, base?.sums, unchangedRows(next, applied.delta))
  return { applied, next, totals, over, both, sums }
}

/** The uploads of a server; `arenas` (one pool per server) keeps the batches' arenas between uploads. */
export const makeUpload = (
  sql: SqlClient.SqlClient,
  revisions: RevisionQueries,
  writeBlobs: BlobWriter,
  arenas: ArenaPool = arenaPool()
) => {
  const probes = blobProbes(sql)
  const findByKey = (tenantId: string, key: string) =>
    sql<{ id: string; parent: string | null; files: number }>`
      SELECT id, parent, files FROM revisions WHERE tenant_id = ${tenantId} AND idempotency_key = ${key}`.pipe(
      Effect.map((rows) => Option.fromNullable(rows[0]))
    )

  /** The answer to an upload whose idempotency key names a revision already made: that revision, not created. */
  const replayed = (done: { id: string; parent: string | null; files: number }, received: number) =>
    new UploadResult({ revision: done.id, parent: done.parent, created: false, files: done.files, received })

  /**
   * Pending blobs whose upload can no longer be running (a server that died mid-upload leaves them): those of an
   * upload whose row is older than any upload runs, and those an older server marked in `upload_id`. The uploads
   * table holds only running uploads, so this reads a few rows; the blobs of a stale one are found by its tenant.
   */
  const collectOrphans = sql`WITH stale AS (
      DELETE FROM uploads WHERE created_at < now() - make_interval(secs => ${ORPHAN_AGE_SECONDS}) RETURNING id, tenant_id
    ), earlier AS (
      DELETE FROM blobs WHERE upload_id IS NOT NULL AND created_at < now() - make_interval(secs => ${ORPHAN_AGE_SECONDS})
    )
    DELETE FROM blobs b USING stale WHERE b.tenant_id = stale.tenant_id AND b.written_by = stale.id
      AND NOT EXISTS (SELECT 1 FROM revisions r WHERE r.id = stale.id)`

  /**
   * Receives an upload archive: its header entry then the bytes of new content (the header form), or its lead, the
   * bytes, then its trailer (the trailer form), stored as pending blobs as they arrive; then, in one transaction, the tree is checked against the caps, the blobs it needs are
   * made permanent, and the new revision and the head move, only if the base is still the head. Whatever
   * ends the upload otherwise (a refusal, a stale base, a dropped connection) deletes its pending blobs.
   */
  return Effect.fn("FileStore.upload")(function* (
    caller: Caller,
    body: Stream.Stream<Uint8Array, TarballUnsafe | Unavailable>,
    options: UploadOptions
  ) {
    const key = options.idempotencyKey
    const caps = options.caps ?? CAPS
    if (key !== undefined) {
      const done = yield* findByKey(caller.tenantId, key).pipe(Effect.catchTag("SqlError", storageFailure("upload")))
      if (Option.isSome(done)) return replayed(done.value, 0)
    }
    // Also the id of the revision it makes, so that what is left of it after its end can tell whether it committed.
    const uploadId = randomUUID()
    let header: UploadHeader | undefined
    // The tree the manifest makes over an empty tenant, made once it is decoded (see `treeAfter`).
    let early: ReturnType<typeof treeAfter> | undefined
    let expected = new Map<string, FileEntry>()
    // The hashes received, each with its size: an entry sent under one path and named under another with the same
    // hash must give the same size, else the revision would name content it cannot serve.
    const received = new Map<string, number>()
    // Links that arrived as link records (whose targets the reader checked): every link of the header must.
    const linksReceived = new Set<string>()
    // Hashes received that the blob writer found held (permanent, or pending for another upload): not written by
    // this upload, so its commit makes them permanent itself and checks they are still there.
    const held = new Set<string>()
    // The form, said by the first entry: the manifest first ("header") or last ("trailer", after a lead entry).
    let form: "header" | "trailer" | undefined
    const takesTrailer = (options.uploads ?? UPLOAD_FORMS).includes("trailer")
    // What a refusal of another first entry names: the header, or either where the trailer form is read.
    const firstEntry = takesTrailer ? `${UPLOAD_HEADER_ENTRY} or ${UPLOAD_LEAD_ENTRY}` : UPLOAD_HEADER_ENTRY
    // Trailer form: each file as it arrived, checked against the trailer when it comes.
    const arrived = new Map<string, Arrived>()
    // Whether the trailer's record has begun: no file comes after it, so what is pending is stored while it is read.
    let trailerBegun = false
    let receivedFiles = 0
    // The upload's row goes into `uploads` before its first blob (its blobs are pending while it is there), and the
    // same statement says whether the tenant held any blob then: a tenant that held none (a first upload) is expected
    // to hold none of this upload's, so its batches skip the lookup of held hashes.
    const batches = uploadBatches({
      write: (blobs, noneHeld) => writeBlobs(caller.tenantId, uploadId, blobs, { noneHeld }),
      register: Effect.map(
        sql.unsafe<{ none: boolean }>(REGISTER, [uploadId, caller.tenantId]),
        (rows) => rows[0]?.none === true
      ),
      arenas,
      onHeld: (sha) => void held.add(sha)
    })
    /**
     * What an upload that made no revision leaves: its row, and the blobs it wrote that no other upload's commit made
     * permanent meanwhile (found by the hashes it received). The revision's id is the upload's, so an upload that
     * did commit (and was interrupted only after) deletes nothing.
     */
    const discardPending = Effect.suspend(() =>
      // Interrupted, a batch's transaction rolls back (or, committed already, its rows go with the rest).
      batches.interrupt.pipe(
        Effect.zipRight(
          batches.registered() ? probes.discard(caller.tenantId, uploadId, [...received.keys()]) : Effect.void
        ),
        Effect.catchAllCause((cause) =>
          Effect.logError("storage: removing the blobs of a refused upload failed", cause)
        )
      )
    )

    /** A file's bytes received and checked: stored once per content, pending until the commit. */
    const keep = (data: Buffer, digest: string) => {
      receivedFiles++
      // The same bytes under another path are stored once.
      if (received.has(digest)) return
      received.set(digest, data.length)
      batches.add({ sha256: digest, data })
    }
    /** An entry's bytes gathered, then handed to `end` whole (a manifest, a lead: outside the arenas). */
    const whole = (end: (data: Buffer) => void): EntrySink => {
      const chunks: Array<Uint8Array> = []
      return { write: (chunk) => void chunks.push(chunk), end: () => end(Buffer.concat(chunks)) }
    }
    /** A file's bytes gathered into the arena of the batch it is pending in, then handed to `end`. */
    const gathered = (size: number, end: (data: Buffer) => void): EntrySink => {
      const chunks: Array<Buffer> = []
      return {
        write: (chunk) => void chunks.push(chunk),
        // Taken at its end: a file's first bytes may come before a flush and its last after it.
        end: () => end(batches.gather(chunks, size))
      }
    }

    /** The header form: every file checked against the header as it arrives. */
    const headerFile = (path: string, size: number, executable: boolean, link: boolean): EntrySink => {
      const want = expected.get(path)
      if (want === undefined) throw new TarballUnsafe({ reason: "file not declared in the upload header", entry: path })
      // The header says what the revision stores; the archive's kind and mode must say the same, before any bytes.
      const kind = kindMismatch(want, { executable, link }, "header")
      if (kind !== undefined) throw new TarballUnsafe({ reason: kind, entry: path })
      if (link) linksReceived.add(path)
      return gathered(size, (data) => {
        const digest = sha256(data)
        const mismatch = entryMismatch(want, { sha256: digest, size: data.length, executable, link }, "header")
        if (mismatch !== undefined) throw new TarballUnsafe({ reason: mismatch, entry: path })
        keep(data, digest)
      })
    }

    /**
     * The trailer form: each file inside the membership, stored as it arrives (the caps on sizes and counts are the
     * reader's, checked on each record's header), and what it arrived as kept for the trailer's check.
     */
    const trailerFile = (path: string, size: number, executable: boolean, link: boolean): EntrySink => {
      if (header !== undefined) throw afterTrailer(path)
      if (path === UPLOAD_HEADER_ENTRY) {
        if (link) throw linkedManifest("trailer")
        if (size > caps.maxManifestBytes)
          throw new TarballUnsafe({ reason: `an upload trailer over ${caps.maxManifestBytes} bytes`, entry: path })
        trailerBegun = true
        return whole((data) => {
          const trailer = decodeHeader(data, caps, "trailer")
          checkTrailer(trailer.set, arrived)
          header = trailer
          if (trailer.base === null) early = treeAfter(undefined, trailer, caps)
        })
      }
      if (!isMemberPath(path)) throw outsideMembership(path)
      if (link) linksReceived.add(path)
      return gathered(size, (data) => {
        const digest = sha256(data)
        arrived.set(path, { sha256: digest, size: data.length, executable, link })
        keep(data, digest)
      })
    }

    const receive = readArchive(
      body,
      {
        file: (path, size, executable, link) => {
          if (form === "header") return headerFile(path, size, executable, link)
          if (form === "trailer") return trailerFile(path, size, executable, link)
          // The first entry says the form: the lead of the trailer form (where this server reads it), else the header.
          if (path === UPLOAD_LEAD_ENTRY && takesTrailer) {
            if (link) throw linkedManifest("lead")
            if (size > MAX_LEAD_BYTES)
              throw new TarballUnsafe({ reason: `an upload lead over ${MAX_LEAD_BYTES} bytes`, entry: path })
            form = "trailer"
            batches.size(MIN_ARENA_BYTES, true)
            return whole(checkLead)
          }
          if (path === UPLOAD_HEADER_ENTRY && link) throw linkedManifest("header")
          if (path !== UPLOAD_HEADER_ENTRY || size > caps.maxManifestBytes) {
            throw new TarballUnsafe({ reason: `an upload starts with ${UPLOAD_HEADER_ENTRY}`, entry: path })
          }
          form = "header"
          return whole((data) => {
            const decoded = decodeHeader(data, caps, "header")
            header = decoded
            if (decoded.base === null) early = treeAfter(undefined, decoded, caps)
            expected = new Map(decoded.set.map((e) => [e.path, e]))
            // A small upload needs no arena of a whole batch.
            batches.size(
              Math.min(
                ARENA_BYTES,
                decoded.set.reduce((n, e) => n + e.size, 0)
              ),
              false
            )
          })
        },
        // No client sends folders; one is refused where a file would be: before the first entry (which says the form)
        // and after the trailer.
        directory: (path) => {
          if (form === undefined)
            throw new TarballUnsafe({ reason: `an upload starts with ${firstEntry}`, entry: path })
          if (form === "trailer" && header !== undefined) throw afterTrailer(path)
        },
        // A batch is stored once it is full, and the last one as soon as the trailer's record begins: its COPY then
        // runs while the trailer (a megabyte at 10,000 files) is received and decoded, not after.
        flush: () => (batches.full(trailerBegun) ? batches.flush : Effect.void),
        // Every file's SHA-256 is checked against its manifest entry (header or trailer), and its path, size, mode and
        // kind: a stored member's CRC would guard nothing more that is kept.
        verifiesContent: true
      },
      caps,
      options.formats
    )

    let committed: { readonly id: string; readonly tree: CachedTree } | undefined
    const commit = (head: UploadHeader) =>
      Effect.gen(function* () {
        const tenant = yield* sql<{
          head: string | null
        }>`SELECT head FROM tenants WHERE id = ${caller.tenantId} FOR UPDATE`
        if (tenant[0] === undefined) return yield* new NotFound({ reason: "no such tenant" })
        if (key !== undefined) {
          const done = yield* findByKey(caller.tenantId, key)
          if (Option.isSome(done)) return replayed(done.value, receivedFiles)
        }
        const current = tenant[0].head
        if (current !== head.base) {
          return yield* new Conflict({
            reason: `the remote head moved: you diffed against ${head.base ?? "an empty tenant"}, the head is now ${current ?? "empty"}; pull, then push again`
          })
        }
        // The parent's tree, parsed once per server process and kept (its id never names another tree).
        const base = current === null ? undefined : yield* revisions.tree(caller.tenantId, current)
        // Over an empty tenant (the head is still the manifest's base, checked above), made when it was decoded.
        const made = base === undefined && early !== undefined ? early : treeAfter(base, head, caps)
        if ("missing" in made)
          return yield* new InvalidInput({ field: "delete", reason: `${made.missing} is not in the base revision` })
        const { applied, next, totals, over, both, sums } = made
        if (over !== undefined)
          return yield* new InvalidInput({ field: "set", reason: `the resulting tree would hold ${over}` })
        if (both !== undefined) {
          return yield* new InvalidInput({
            field: "set",
            reason: `${both} would be both a file and a folder; delete the file in the same push (files push --delete)`
          })
        }
        const checksum = sums.checksum
        if (checksum !== head.checksum) {
          return yield* new InvalidInput({
            field: "checksum",
            reason: "the resulting tree does not match the client's checksum"
          })
        }
        // A link's target is checked only as a link record: one the archive did not carry is not taken on trust.
        const unchecked = head.set.find((e) => e.link === true && !linksReceived.has(e.path))
        if (unchecked !== undefined) {
          return yield* new InvalidInput({
            field: "set",
            reason: `the symbolic link ${unchecked.path} was not sent as a link record; every link must be, so that its target is checked`
          })
        }
        // The blobs this upload wrote become permanent with its row deleted, all at once. Gone already, the row
        // was collected as an upload that ran past any deadline: its blobs may be going too.
        if (batches.registered()) {
          const gone = yield* sql`DELETE FROM uploads WHERE id = ${uploadId} RETURNING id`
          if (gone.length === 0) {
            return yield* new Unavailable({
              reason: "this upload outlived its deadline on the server; retry the upload"
            })
          }
        }
        // Those received that another upload had stored (pending for it, or permanent) are made permanent here,
        // one statement over the few rows still marked.
        if (held.size > 0) yield* probes.makePermanent(caller.tenantId, [...held])
        // An entry named with the hash of content received under another path must give that content's size: the
        // revision would name bytes of another size than its entry, which no download could serve.
        const resized = head.set.find((e) => {
          const size = received.get(e.sha256)
          return size !== undefined && size !== e.size
        })
        if (resized !== undefined) return yield* new InvalidInput({ field: "set", reason: wrongSize(resized.path) })
        // Every other blob the tree's new rows name must be stored and permanent (one this upload wrote is), and of
        // the size the entry gives.
        const looked = new Set<string>()
        for (const e of head.set) if (held.has(e.sha256) || !received.has(e.sha256)) looked.add(e.sha256)
        const present = new Map(
          looked.size === 0
            ? []
            : (yield* probes.present(caller.tenantId, [...looked])).map((r) => [r.sha256, r.size] as const)
        )
        const misfit = head.set.find((e) => {
          const size = present.get(e.sha256)
          return size !== undefined && size !== e.size
        })
        if (misfit !== undefined) return yield* new InvalidInput({ field: "set", reason: wrongSize(misfit.path) })
        const missing = looked.size === 0 ? [] : head.set.filter((e) => looked.has(e.sha256) && !present.has(e.sha256))
        if (missing.some((e) => received.has(e.sha256))) {
          // Received, but removed by a concurrent refused upload that had stored the same bytes first.
          return yield* new Unavailable({
            reason: "content received during this upload was removed meanwhile; retry the upload"
          })
        }
        const [first] = missing
        if (first !== undefined) {
          return yield* new InvalidInput({
            field: "set",
            reason: `no content received for ${missing.length} file(s), e.g. ${first.path}`
          })
        }
        const id = uploadId
        const storedWhole = storesWhole(base, applied)
        const depth = storedWhole || base === undefined ? 0 : base.depth + 1
        const chain =
          storedWhole || base === undefined ? 0 : base.chain + applied.delta.set.length + applied.delta.delete.length
        // The revision and the head move in one statement (the head's foreign key is checked at its end).
        yield* sql`WITH made AS (
            INSERT INTO revisions (id, tenant_id, parent, manifest_text, delta, depth, chain, checksum, files, author,
                                   token_id, idempotency_key, added, changed, deleted, storage)
            VALUES (${id}, ${caller.tenantId}, ${current},
                    ${storedWhole ? JSON.stringify(next) : null},
                    ${storedWhole ? null : JSON.stringify(applied.delta)}::jsonb,
                    ${depth}, ${chain},
                    ${checksum}, ${next.length}, ${head.author.slice(0, 200) || caller.label}, ${caller.tokenId},
                    ${key ?? null}, ${applied.added}, ${applied.changed}, ${applied.deleted}, ${STORAGE})
            RETURNING id)
          UPDATE tenants SET head = (SELECT id FROM made) WHERE id = ${caller.tenantId}`
        committed = { id, tree: { entries: next, depth, chain, clean: true, sums, totals } }
        return new UploadResult({
          revision: id,
          parent: current,
          created: true,
          files: next.length,
          received: receivedFiles
        })
      })

    return yield* Effect.gen(function* () {
      // A failed collection delays it to the next upload; this one goes on.
      yield* Effect.catchAllCause(collectOrphans, (cause) =>
        Effect.logWarning("storage: collecting abandoned uploads failed", cause)
      )
      yield* receive
      const head: UploadHeader | undefined = header
      if (head === undefined)
        return yield* new TarballUnsafe(
          form === "trailer"
            ? { reason: `the upload ended without its trailer`, entry: UPLOAD_HEADER_ENTRY }
            : { reason: `an upload starts with ${UPLOAD_HEADER_ENTRY}` }
        )
      yield* batches.finish
      const result = yield* sql.withTransaction(commit(head))
      // Kept once committed: a tree of a transaction rolled back would name no revision, but would take room.
      if (committed !== undefined) revisions.remember(caller.tenantId, committed.id, committed.tree)
      return result
    }).pipe(
      Effect.catchTag("SqlError", storageFailure("upload")),
      Effect.onExit((exit) =>
        Effect.zipRight(
          Exit.isSuccess(exit) && exit.value.created ? Effect.void : discardPending,
          // After the discard: an interrupted write's arena is never given back.
          Effect.sync(batches.release)
        )
      )
    )
  })
}
