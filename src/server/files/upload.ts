/**
 * An upload received: its header checked before any content is read (or, in the trailer form, its trailer checked
 * against every file received before it), content stored as pending blobs as it arrives, then the new revision
 * committed in one transaction.
 */
import { randomUUID } from "node:crypto"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import { Effect, Exit, Fiber, Option, Schema, type Stream } from "effect"
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
import type { BlobWriter, PendingBlob } from "./blobWrite.js"
import type { CachedTree } from "./manifestCache.js"
import type { RevisionQueries } from "./revisions.js"
import { BATCH_ROWS, storageFailure, stored } from "./stored.js"
import { type Arrived, checkLead, checkTrailer, entryMismatch, kindMismatch, MAX_LEAD_BYTES } from "./trailer.js"
import { applyDelta, fileAndFolderAfter, storesWhole } from "./tree.js"
import { overCaps, totalsAfterDelta, totalsOf, treeSums, unchangedRows } from "./treeSum.js"

// Blob inserts are batched by bytes (the input buffers their files keep alive) so memory stays flat however large the tree.
const BATCH_BYTES = 8 * 1024 * 1024
// A batch's files are read into an arena of this size (a batch ends after the input piece that reaches BATCH_BYTES,
// so it may go a little past it); a file that does not fit in what is left gets a buffer of its own.
const ARENA_BYTES = BATCH_BYTES + 1024 * 1024
// The first arena of an upload in the trailer form (which grows from there as files arrive, up to ARENA_BYTES).
const MIN_ARENA_BYTES = 64 * 1024
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

export const makeUpload = (sql: SqlClient.SqlClient, revisions: RevisionQueries, writeBlobs: BlobWriter) => {
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
    // Whether the upload's row is in `uploads` (it is written before its first blob): its blobs are pending while it is.
    let registered = false
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
    let pending: Array<PendingBlob> = []
    let pendingBytes = 0
    // The input buffers the pending batch's files are views of (see `gather`), each counted once in `pendingBytes`.
    const viewed = new Set<ArrayBufferLike>()
    // Files are read into arenas, two in turn: the batch being read fills one while the batch before it, in the
    // other, is stored; an arena is used again only once its batch's write has ended (a buffer per file cost its
    // page faults and a sixth of the upload's CPU in garbage collection).
    let arena: Buffer | undefined
    let arenaAt = 0
    let arenaBytes = ARENA_BYTES
    // The trailer form does not know its size before its files: its arenas start small and grow as files arrive.
    let growing = false
    let spare: Buffer | undefined
    let inflightArena: Buffer | undefined
    const take = (size: number): Buffer => {
      if (arena === undefined) {
        arena = spare !== undefined && spare.length >= arenaBytes ? spare : Buffer.allocUnsafeSlow(arenaBytes)
        spare = undefined
        arenaAt = 0
      }
      if (arenaAt + size > arena.length) {
        if (!growing || arenaBytes >= ARENA_BYTES || size > ARENA_BYTES) return Buffer.allocUnsafe(size)
        // A larger arena for the rest of the batch: the files already in this one keep it until the batch is stored.
        arenaBytes = Math.min(ARENA_BYTES, Math.max(arenaBytes * 4, size))
        arena = Buffer.allocUnsafeSlow(arenaBytes)
        arenaAt = 0
      }
      arenaAt += size
      return arena.subarray(arenaAt - size, arenaAt)
    }
    /**
     * A file's chunks in one buffer (the reader hands over the `size` bytes its header says): a file that came in one
     * chunk is that chunk (a view of the input the reader never writes again: the COPY copies it into its pieces, so a
     * copy here would be a second one, for most files); one in several is gathered into the arena. A view keeps its
     * whole input buffer alive until its batch is stored, so the batch counts that buffer once, whole: what a batch
     * holds stays near BATCH_BYTES however the input is cut (a small file alone in an inflater's 256 KiB piece, each
     * after a pax header of ignored records that compresses 150:1, held 128 MB a batch when only its bytes counted).
     */
    const gather = (chunks: ReadonlyArray<Buffer>, size: number): Buffer => {
      const [only] = chunks
      if (chunks.length === 1 && only !== undefined) {
        if (!viewed.has(only.buffer)) {
          viewed.add(only.buffer)
          pendingBytes += only.buffer.byteLength - only.length
        }
        return only
      }
      const data = take(size)
      let at = 0
      for (const chunk of chunks) {
        data.set(chunk, at)
        at += chunk.length
      }
      return at === size ? data : data.subarray(0, at)
    }
    // One batch insert runs while the next batch is read off the socket, so the upload never waits on both.
    let inflight: Fiber.RuntimeFiber<ReadonlyArray<string>, SqlError.SqlError> | undefined
    const settle = Effect.suspend(() => {
      const f = inflight
      inflight = undefined
      return f === undefined
        ? Effect.void
        : Effect.flatMap(Fiber.join(f), (leftAlone) =>
            Effect.sync(() => {
              for (const sha of leftAlone) held.add(sha)
              // Its batch is stored: nothing reads its arena any more.
              spare = inflightArena
              inflightArena = undefined
            })
          )
    })
    const register = Effect.suspend(() =>
      registered
        ? Effect.void
        : Effect.zipRight(
            Effect.sync(() => {
              registered = true
            }),
            sql`INSERT INTO uploads (id, tenant_id) VALUES (${uploadId}, ${caller.tenantId})`
          )
    )
    const flush = Effect.suspend(() => {
      if (pending.length === 0) return settle
      const rows = pending
      const rowsArena = arena
      pending = []
      pendingBytes = 0
      viewed.clear()
      arena = undefined
      return settle.pipe(
        Effect.zipRight(register),
        // A daemon: the archive reader may run this on a fiber of its own that ends before the join; the
        // cleanup below interrupts it (and waits for it) before deleting, so no insert lands after it.
        Effect.zipRight(Effect.forkDaemon(writeBlobs(caller.tenantId, uploadId, rows))),
        Effect.flatMap((fiber) =>
          Effect.sync(() => {
            inflight = fiber
            inflightArena = rowsArena
          })
        )
      )
    })
    /**
     * What an upload that made no revision leaves: its row, and the blobs it wrote that no other upload's commit made
     * permanent meanwhile (found by the hashes it received). The revision's id is the upload's, so an upload that
     * did commit (and was interrupted only after) deletes nothing.
     */
    const discardPending = Effect.suspend(() => {
      const f = inflight
      inflight = undefined
      // Interrupted, a batch's transaction rolls back (or, committed already, its rows go with the rest).
      return (f === undefined ? Effect.void : Fiber.interrupt(f)).pipe(
        Effect.zipRight(registered ? probes.discard(caller.tenantId, uploadId, [...received.keys()]) : Effect.void),
        Effect.catchAllCause((cause) =>
          Effect.logError("storage: removing the blobs of a refused upload failed", cause)
        )
      )
    })

    /** A file's bytes received and checked: stored once per content, pending until the commit. */
    const keep = (data: Buffer, digest: string) => {
      receivedFiles++
      // The same bytes under another path are stored once.
      if (received.has(digest)) return
      received.set(digest, data.length)
      pending.push({ sha256: digest, data })
      pendingBytes += data.length
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
        end: () => end(gather(chunks, size))
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
            arenaBytes = MIN_ARENA_BYTES
            growing = true
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
            arenaBytes = Math.min(
              ARENA_BYTES,
              decoded.set.reduce((n, e) => n + e.size, 0)
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
        flush: () =>
          pendingBytes >= BATCH_BYTES || pending.length >= BATCH_ROWS || (trailerBegun && pending.length > 0)
            ? flush
            : Effect.void,
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
        if (registered) {
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
      yield* flush
      yield* settle
      const result = yield* sql.withTransaction(commit(head))
      // Kept once committed: a tree of a transaction rolled back would name no revision, but would take room.
      if (committed !== undefined) revisions.remember(caller.tenantId, committed.id, committed.tree)
      return result
    }).pipe(
      Effect.catchTag("SqlError", storageFailure("upload")),
      Effect.onExit((exit) => (Exit.isSuccess(exit) && exit.value.created ? Effect.void : discardPending))
    )
  })
}
