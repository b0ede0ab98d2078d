/** The files area of the tenant API: manifest, upload, download and revisions, in the direct and relay URL families. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { type FileEntry, isRelPath, isSha256, MAX_LINK_BYTES, RelPath, Sha256 } from "../domain/model.js"
import { ConflictWire, described, InvalidInputWire, TarballUnsafeWire, tenantGroups, Unavailable } from "./common.js"

/** Whether a value is a valid file entry (the FileEntry rules, checked without decoding). */
export const isEntry = (u: unknown): u is FileEntry => {
  if (typeof u !== "object" || u === null) return false
  const e = u as { path?: unknown; size?: unknown; sha256?: unknown; executable?: unknown; link?: unknown }
  return (
    isRelPath(e.path) &&
    typeof e.size === "number" &&
    Number.isSafeInteger(e.size) &&
    e.size >= 0 &&
    isSha256(e.sha256) &&
    (e.executable === undefined || typeof e.executable === "boolean") &&
    // A link is never executable, and its target is at most MAX_LINK_BYTES long.
    (e.link === undefined || e.link === false || (e.link === true && e.executable !== true && e.size <= MAX_LINK_BYTES))
  )
}

/**
 * A whole tree's entries, checked entry by entry with the FileEntry rules by one predicate: a manifest
 * has tens of thousands of entries and is read on every run, so it skips the per-field decoding.
 */
export const FileEntries = Schema.declare(
  (u: unknown): u is ReadonlyArray<FileEntry> => Array.isArray(u) && u.every(isEntry),
  {
    identifier: "FileEntries",
    description: "files of a tree, sorted by path",
    jsonSchema: {
      type: "array",
      items: {
        type: "object",
        required: ["path", "size", "sha256"],
        properties: {
          path: { type: "string", description: "a relative path inside the tree" },
          size: { type: "integer", minimum: 0 },
          sha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
          executable: {
            type: "boolean",
            description: "true for an executable file (written 0755); absent or false: a plain file (0644)"
          },
          link: {
            type: "boolean",
            description:
              "true for a symbolic link: sha256 and size are its target text's, a relative path that stays inside the tree"
          }
        }
      }
    }
  }
)

/** The head (or a given revision) of a tenant's tree: every file with its size and hash. */
export class RemoteManifest extends Schema.Class<RemoteManifest>("RemoteManifest")({
  /** The tenant the tree belongs to (in direct mode, the token's). */
  tenant: Schema.String,
  /** null while the tenant has never been pushed to. */
  revision: Schema.NullOr(Schema.String),
  entries: FileEntries,
  checksum: Sha256
}) {}

/**
 * A manifest that stands for the head at `revision` in a conditional request (`SyncApiClient.manifest`'s `known`):
 * a 304 returns it as is, so nothing but its revision is ever read.
 */
export const standIn = (tenant: string, revision: string) =>
  new RemoteManifest({ tenant, revision, entries: [], checksum: "0".repeat(64) }, { disableValidation: true })

/**
 * The manifest's conditional request: the ETag of a head manifest the client already holds. When it still
 * names the head, the answer is 304 Not Modified with no body (a tree of 10,000 files is ~1 MB of JSON).
 */
const ManifestHeaders = Schema.Struct({ "if-none-match": Schema.optional(Schema.String) })

/** The head is still the revision whose ETag the client sent. */
export class NotModified extends Schema.TaggedClass<NotModified>()("NotModified", {}) {}
const NotModifiedResponse = NotModified.pipe(HttpApiSchema.asEmpty({ status: 304, decode: () => new NotModified() }))

/** The ETag of a revision's manifest: revisions are immutable, so the id names the bytes. */
export const manifestEtag = (revision: string) => `"${revision}"`

/** Whether an If-None-Match value (a list of tags, weak or strong, or `*`) matches a revision. */
export const etagMatches = (ifNoneMatch: string, revision: string) => {
  const tag = manifestEtag(revision)
  return ifNoneMatch.split(",").some((t) => {
    const v = t.trim()
    return v === "*" || v === tag || v === `W/${tag}`
  })
}

/**
 * An upload's manifest (`UPLOAD_HEADER_ENTRY`): how the new tree differs from its base. The first entry of an upload in
 * the header form; the last, after the files, in the trailer form (see `UploadLead`).
 */
export class UploadHeader extends Schema.Class<UploadHeader>("UploadHeader")({
  /** The revision the client diffed against; the head moves only if it is still the head. */
  base: Schema.NullOr(Schema.String),
  author: Schema.String,
  /**
   * Files added or modified; their bytes are in the archive (after a header, before a trailer) unless the tenant
   * already holds the hash, at the size given.
   */
  set: FileEntries,
  delete: Schema.Array(RelPath),
  /** manifestChecksum of the resulting tree, so both sides agree on what the revision holds. */
  checksum: Sha256
}) {}

export const UPLOAD_HEADER_ENTRY = ".agentsync-upload.json"

/**
 * The first entry of an upload in the trailer form (`UPLOAD_LEAD_ENTRY`): the manifest comes last, as the
 * `UPLOAD_HEADER_ENTRY` entry after every file, so a client can send each file as it reads and hashes it. Used only
 * when the server announced it (`UPLOAD_FORMS_HEADER` on a manifest answer).
 */
export class UploadLead extends Schema.Class<UploadLead>("UploadLead")({
  manifest: Schema.Literal("trailer")
}) {}

export const UPLOAD_LEAD_ENTRY = ".agentsync-upload-lead.json"
export const IDEMPOTENCY_HEADER = "idempotency-key"
/** A download's answer header naming the revision its archive is of. */
export const REVISION_HEADER = "x-agentsync-revision"

export class UploadResult extends Schema.Class<UploadResult>("UploadResult")({
  revision: Schema.String,
  parent: Schema.NullOr(Schema.String),
  /** false when the idempotency key had already committed this upload (a retry). */
  created: Schema.Boolean,
  files: Schema.NonNegativeInt,
  received: Schema.NonNegativeInt
}) {}

export class RevisionInfo extends Schema.Class<RevisionInfo>("RevisionInfo")({
  id: Schema.String,
  parent: Schema.NullOr(Schema.String),
  author: Schema.String,
  created_at: Schema.String,
  files: Schema.NonNegativeInt,
  checksum: Sha256,
  /** The name of the token that pushed it, while the token exists (absent from older servers). */
  token_name: Schema.optional(Schema.NullOr(Schema.String)),
  /** Files added, changed and deleted against its parent (absent from older servers). */
  added: Schema.optional(Schema.NonNegativeInt),
  changed: Schema.optional(Schema.NonNegativeInt),
  deleted: Schema.optional(Schema.NonNegativeInt)
}) {}

/** A download of selected paths of a revision (a body, because a selection can be long). */
export class DownloadSelection extends Schema.Class<DownloadSelection>("DownloadSelection")({
  revision: Schema.String,
  paths: Schema.Array(RelPath)
}) {}

const Gzip = HttpApiSchema.Uint8Array({ contentType: "application/gzip" })
const RevisionParam = Schema.Struct({ revision: Schema.optional(Schema.String) })
/** The idempotency key a retried write carries (upload, import, deploy, rollback). */
export const IdempotencyHeaders = Schema.Struct({ [IDEMPOTENCY_HEADER]: Schema.optional(Schema.String) })
const RevisionsParams = Schema.Struct({
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000)))
})

/** The route suffixes, shared by both families and by the streaming client. */
export const FilesRoutes = {
  manifest: "/files/manifest",
  upload: "/files",
  download: "/files",
  select: "/files/select",
  revisions: "/files/revisions"
} as const

export { CLOUD_PREFIX, SYNC_PREFIX } from "./common.js"

const files = tenantGroups(
  {
    sync: "files",
    cloud: "cloudFiles",
    description: "The tenant's file tree: manifests, uploads of changed files, downloads and revision history."
  },
  [
    HttpApiEndpoint.get("manifest", FilesRoutes.manifest)
      .setUrlParams(RevisionParam)
      .setHeaders(ManifestHeaders)
      .addSuccess(RemoteManifest)
      .addSuccess(NotModifiedResponse)
      .pipe(
        described(
          "Get a manifest",
          "Every file of the head (or of `revision`) with its size and SHA-256, and the tree's checksum. The answer carries the revision's ETag; with `If-None-Match` naming the head, the answer is 304 with no body."
        )
      ),
    HttpApiEndpoint.post("upload", FilesRoutes.upload)
      .setHeaders(IdempotencyHeaders)
      .setPayload(Gzip)
      .addSuccess(UploadResult)
      .addError(ConflictWire)
      .addError(TarballUnsafeWire)
      .addError(InvalidInputWire)
      .addError(Unavailable)
      .pipe(
        described(
          "Push a revision",
          `A tar.gz (or zstd frames, when the server names zstd in \`x-agentsync-archive\`) whose first entry (\`${UPLOAD_HEADER_ENTRY}\`) names the base revision, the files set and deleted, and the resulting checksum; the bytes of files the tenant does not hold yet follow. The head moves only if the base is still the head (else 409). A retry with the same \`${IDEMPOTENCY_HEADER}\` answers with the revision already made.\n\nThe trailer form, when a manifest answer names \`trailer\` in \`x-agentsync-upload\`: the first entry is \`${UPLOAD_LEAD_ENTRY}\` (\`{"manifest":"trailer"}\`), the files follow, and the last entry is \`${UPLOAD_HEADER_ENTRY}\` with the same fields, naming every file sent (same hash, size, mode and kind); nothing may follow it. The caps, paths and membership are checked on each file as it arrives; a trailer missing, malformed, over its size cap or disagreeing with what was received refuses the upload (422), and nothing of it is kept.`
        )
      ),
    HttpApiEndpoint.get("download", FilesRoutes.download)
      .setUrlParams(RevisionParam)
      .addSuccess(Gzip)
      .pipe(
        described(
          "Download a revision",
          "The whole tree of the head (or of `revision`) as a tar.gz; the `x-agentsync-revision` header names the revision."
        )
      ),
    HttpApiEndpoint.post("select", FilesRoutes.select)
      .setPayload(DownloadSelection)
      .addSuccess(Gzip)
      .pipe(
        described(
          "Download selected files",
          "The named paths of a revision as a tar.gz (a body, since a selection can be long)."
        )
      ),
    HttpApiEndpoint.get("revisions", FilesRoutes.revisions)
      .setUrlParams(RevisionsParams)
      .addSuccess(Schema.Array(RevisionInfo))
      .pipe(described("List revisions", "The tenant's revisions, newest first (at most `limit`, default 50)."))
  ]
)

export class SyncFilesGroup extends files.sync {}
export class CloudFilesGroup extends files.cloud {}
