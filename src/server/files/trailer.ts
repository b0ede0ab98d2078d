/**
 * An upload in the trailer form (manifest last): its lead entry, what each file arrived as, and the trailer's check of
 * them; and the one check of a file against its manifest entry, which the header form makes too.
 */
import { Schema } from "effect"
import { UPLOAD_HEADER_ENTRY, UPLOAD_LEAD_ENTRY, UploadLead } from "../../api/files.js"
import type { FileEntry } from "../../domain/model.js"
import { TarballUnsafe } from "../../errors.js"

/** The lead entry's largest size: `{"manifest":"trailer"}` and room to spare. */
export const MAX_LEAD_BYTES = 1024

const decodeLeadJson = Schema.decodeUnknownEither(Schema.parseJson(UploadLead))

/** The lead entry decoded: anything but the trailer form's lead refuses the upload. */
export const checkLead = (data: Uint8Array): void => {
  const decoded = decodeLeadJson(Buffer.from(data).toString("utf8"))
  if (decoded._tag === "Left")
    throw new TarballUnsafe({
      reason: `bad upload lead: ${decoded.left.message.slice(0, 300)}`,
      entry: UPLOAD_LEAD_ENTRY
    })
}

/** A file as it arrived: its content's hash and size, its mode and kind as the archive said. */
export interface Arrived {
  readonly sha256: string
  readonly size: number
  readonly executable: boolean
  readonly link: boolean
}

/**
 * The trailer against what arrived before it: a path named at most once, and every file received named by it with
 * the same hash, size, mode and kind. (What it names that did not arrive must be content the tenant holds: the
 * commit checks that, as it does for a header.) A disagreement refuses the upload, naming the entry.
 */
export const checkTrailer = (set: ReadonlyArray<FileEntry>, arrived: ReadonlyMap<string, Arrived>): void => {
  const named = new Map<string, FileEntry>()
  for (const e of set) {
    if (named.has(e.path))
      throw new TarballUnsafe({ reason: `named twice in the upload trailer (${UPLOAD_HEADER_ENTRY})`, entry: e.path })
    named.set(e.path, e)
  }
  for (const [path, got] of arrived) {
    const want = named.get(path)
    if (want === undefined)
      throw new TarballUnsafe({ reason: `file not named by the upload trailer (${UPLOAD_HEADER_ENTRY})`, entry: path })
    const mismatch = entryMismatch(want, got, "trailer")
    if (mismatch !== undefined) throw new TarballUnsafe({ reason: mismatch, entry: path })
  }
}

/**
 * How an archive record's kind and mode disagree with its manifest entry (`where`: the upload's header or trailer),
 * if they do: known from the record's header, before its bytes.
 */
export const kindMismatch = (
  want: FileEntry,
  got: Pick<Arrived, "executable" | "link">,
  where: "header" | "trailer"
): string | undefined =>
  got.link !== (want.link === true)
    ? got.link
      ? `a symbolic link the upload ${where} lists as a file`
      : `a file the upload ${where} lists as a link`
    : got.executable !== (want.executable === true)
      ? `mode does not match its upload ${where} entry`
      : undefined

/** How a file received disagrees with its manifest entry, if it does: kind, mode, size, then content. */
export const entryMismatch = (want: FileEntry, got: Arrived, where: "header" | "trailer"): string | undefined =>
  kindMismatch(want, got, where) ??
  (got.size !== want.size
    ? `size does not match its upload ${where} entry`
    : got.sha256 !== want.sha256
      ? `content does not match the sha256 of its upload ${where} entry`
      : undefined)
