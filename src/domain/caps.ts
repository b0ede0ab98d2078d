/** The one set of caps on what file sync moves, shared by the server and the client: a revision the server accepts is one every client can pull. */
import * as zlib from "node:zlib"
import { Config, Effect, Option } from "effect"
import { MissingConfig } from "../errors.js"
import { ARCHIVE_FORMATS_HEADER, ENTRY_KINDS_HEADER, UPLOAD_FORMS_HEADER } from "./capsHeaders.js"

/** Limits on a tree, its manifest and its archives; anything over one of them is refused whole. */
export interface Caps {
  /** Files in a tree (and entries in an archive). */
  readonly maxEntries: number
  readonly maxFileBytes: number
  /** The sum of a tree's file sizes. */
  readonly maxTotalBytes: number
  /** Bytes of a manifest as JSON on the wire. */
  readonly maxManifestBytes: number
  /** Bytes of a path. */
  readonly maxPathBytes: number
  /**
   * Decompressed bytes per compressed byte. The writer keeps every gzip member within it (a member that
   * would compress better is stored), and the reader allows it plus one member, so an honest archive always
   * passes, whatever it holds, and a bomb never gets more than a member past the cap.
   */
  readonly maxRatio: number
  /**
   * The largest uncompressed gzip member agentsync writes (the reader's allowance above the ratio): above the
   * batches both sides write (1 MiB of files on upload, 2 MiB on download, plus their tar headers), so only a
   * larger file is cut into several members.
   */
  readonly memberBytes: number
}

export const CAPS: Caps = {
  maxEntries: 200_000,
  maxFileBytes: 256 * 1024 * 1024,
  maxTotalBytes: 8 * 1024 * 1024 * 1024,
  maxManifestBytes: 64 * 1024 * 1024,
  maxPathBytes: 1024,
  maxRatio: 200,
  memberBytes: 4 * 1024 * 1024
}

/** Deadlines and the slowest acceptable pace of a transfer. */
export interface TransferLimits {
  /** A request/response exchange: the answer's headers must arrive within it. */
  readonly exchangeMs: number
  /** One whole call, every retry and every byte of its body included. */
  readonly deadlineMs: number
  /** Bytes per second, averaged over `windowMs`: a body slower than that is cut. */
  readonly minBytesPerSecond: number
  readonly windowMs: number
}

export const TRANSFER: TransferLimits = {
  exchangeMs: 30_000,
  deadlineMs: 30 * 60_000,
  minBytesPerSecond: 1024,
  windowMs: 20_000
}

/** The environment variables that override `TRANSFER`, for the client and the server alike. */
export const TRANSFER_ENV = {
  exchangeMs: "AGENTSYNC_TIMEOUT_MS",
  deadlineMs: "AGENTSYNC_TRANSFER_TIMEOUT_MS",
  minBytesPerSecond: "AGENTSYNC_MIN_RATE",
  windowMs: "AGENTSYNC_RATE_WINDOW_MS"
} as const satisfies Record<keyof TransferLimits, string>

/**
 * A variable holding a number ≥ 0 (a whole one when `integer`), read through Effect's `Config`; unset or empty:
 * none. Anything else fails naming the variable (the command line exits 2), never a silent fallback to the default.
 */
export const nonNegativeSetting = (
  name: string,
  integer = false
): Effect.Effect<Option.Option<number>, MissingConfig> =>
  Config.option(Config.string(name)).pipe(
    Effect.mapError((e) => new MissingConfig({ key: name, reason: String(e) })),
    Effect.flatMap((raw) => {
      if (Option.isNone(raw) || raw.value.trim() === "") return Effect.succeed(Option.none())
      const n = Number(raw.value)
      return Number.isFinite(n) && n >= 0 && (!integer || Number.isInteger(n))
        ? Effect.succeed(Option.some(n))
        : Effect.fail(
            new MissingConfig({
              key: name,
              reason: `must be ${integer ? "a whole number" : "a number"} ≥ 0, got ${JSON.stringify(raw.value.slice(0, 40))}`
            })
          )
    })
  )

/** The limits from the environment, each variable set laid over `TRANSFER`: for the client and the server alike. */
export const transferLimitsFromEnv: Effect.Effect<TransferLimits, MissingConfig> = Effect.all({
  exchangeMs: nonNegativeSetting(TRANSFER_ENV.exchangeMs),
  deadlineMs: nonNegativeSetting(TRANSFER_ENV.deadlineMs),
  minBytesPerSecond: nonNegativeSetting(TRANSFER_ENV.minBytesPerSecond),
  windowMs: nonNegativeSetting(TRANSFER_ENV.windowMs)
}).pipe(
  Effect.map((set) => ({
    exchangeMs: Option.getOrElse(set.exchangeMs, () => TRANSFER.exchangeMs),
    deadlineMs: Option.getOrElse(set.deadlineMs, () => TRANSFER.deadlineMs),
    minBytesPerSecond: Option.getOrElse(set.minBytesPerSecond, () => TRANSFER.minBytesPerSecond),
    windowMs: Option.getOrElse(set.windowMs, () => TRANSFER.windowMs)
  }))
)

/**
 * What an archive's members are: gzip (every Node) or zstd frames (Node 22.15 and 23.8 on); or `tar`, the records
 * with no frame at all, which only a pull reads (see `DOWNLOAD_FORMATS`).
 */
export type ArchiveFormat = "gzip" | "zstd" | "tar"

/** The formats this Node reads and writes, the preferred first (zstd where `node:zlib` has it). */
export const FORMATS: ReadonlyArray<ArchiveFormat> =
  "zstdCompress" in zlib && "ZstdDecompress" in zlib ? ["zstd", "gzip"] : ["gzip"]

/**
 * The formats a pull reads a download in: `FORMATS`, and a plain tar, which a server sends where it would store
 * (a client on its own machine, or compression turned off): no gzip frame to make and no CRC-32 of every byte, for
 * a reader that checks every file by its SHA-256 anyway (see `readArchive`). Not in `FORMATS`: a server does not
 * name it among what it reads, so no upload is made in it.
 */
export const DOWNLOAD_FORMATS: ReadonlyArray<ArchiveFormat> = [...FORMATS, "tar"]

/**
 * The header naming the formats an end reads: the client sends it with a download (the server answers in one of
 * them), the server with every manifest answer (the client then uploads in one of them). An end that sends none
 * reads gzip only.
 */
export { ARCHIVE_FORMATS_HEADER }

/** The names of `known` a list header names (comma-separated, any case), in the header's order; none for a missing one. */
const namedIn = <T extends string>(header: string | undefined | null, known: ReadonlyArray<T>): ReadonlyArray<T> =>
  (header ?? "").split(",").flatMap((f) => {
    const name = f.trim().toLowerCase()
    return known.filter((k) => k === name)
  })

/**
 * The formats a header names that this code knows, in its order; none for a missing header. A plain `tar` counts
 * only where `withTar` says (a download's request, from a pull), never in a server's answer (no upload is a tar).
 */
export const parseFormats = (header: string | undefined | null, withTar = false): ReadonlyArray<ArchiveFormat> =>
  namedIn<ArchiveFormat>(header, withTar ? ["gzip", "zstd", "tar"] : ["gzip", "zstd"])

/** Kinds of manifest entries beyond plain files: an executable bit, a symbolic link. */
export type EntryKind = "executable" | "link"

/** The kinds this code keeps: a server stores and serves them, a client writes them. */
export const ENTRY_KINDS: ReadonlyArray<EntryKind> = ["executable", "link"]

/**
 * The header naming the kinds of entries a server keeps, sent with every manifest answer beside the formats. A
 * server that keeps fewer would store a revision whose checksum leaves them out (a push ends in a checksum
 * mismatch), so the client refuses such a push before sending anything.
 */
export { ENTRY_KINDS_HEADER }

/**
 * The kinds a server keeps, from its manifest answer's headers: those `x-agentsync-entries` names; without it,
 * both when it names its archive formats (servers since that negotiation keep both), else none (an older build).
 */
export const entryKindsOf = (
  entries: string | undefined | null,
  formats: string | undefined | null
): ReadonlyArray<EntryKind> =>
  entries == null ? (formats == null ? [] : ENTRY_KINDS) : namedIn<EntryKind>(entries, ["executable", "link"])

/**
 * The headers of every manifest answer (200 and 304): the archive formats the server reads and the kinds of
 * entries it keeps. A server keeping none sends neither, as the builds before either answered (its clients then
 * upload gzip, which every server reads).
 */
export const manifestCapsHeaders = (
  formats: ReadonlyArray<ArchiveFormat>,
  entries: ReadonlyArray<EntryKind> = ENTRY_KINDS,
  uploads: ReadonlyArray<UploadForm> = UPLOAD_FORMS
): Record<string, string> =>
  entries.length === 0
    ? {}
    : {
        [ARCHIVE_FORMATS_HEADER]: formats.join(", "),
        [ENTRY_KINDS_HEADER]: entries.join(", "),
        ...(uploads.length === 0 ? {} : { [UPLOAD_FORMS_HEADER]: uploads.join(", ") })
      }

/** Upload forms beyond the header form: `trailer`, the manifest after the files (see `UPLOAD_LEAD_ENTRY`). */
export type UploadForm = "trailer"

/** The forms this code reads. */
export const UPLOAD_FORMS: ReadonlyArray<UploadForm> = ["trailer"]

/** The header naming them, on every manifest answer of a server that reads them (none from an older one). */
export { UPLOAD_FORMS_HEADER }

/** The forms a header names that this code knows; none for a missing header. */
export const parseUploadForms = (header: string | undefined | null): ReadonlyArray<UploadForm> =>
  namedIn<UploadForm>(header, ["trailer"])

/**
 * When archives are compressed: `auto` as the link says (stored on loopback, compressed on a real link), `always`
 * (a loopback address that is really a tunnel to another machine), `never` (stored everywhere).
 */
export type CompressSetting = "auto" | "always" | "never"

/** The variable that sets it, for the client and the server alike. */
export const COMPRESSION_ENV = "AGENTSYNC_COMPRESSION"

/** The setting from the environment (default `auto`); any other value fails naming the variable. */
export const compressSettingFromEnv: Effect.Effect<CompressSetting, MissingConfig> = Config.option(
  Config.literal("auto", "always", "never")(COMPRESSION_ENV)
).pipe(
  Effect.map(Option.getOrElse((): CompressSetting => "auto")),
  Effect.mapError((e) => new MissingConfig({ key: COMPRESSION_ENV, reason: `must be auto, always or never: ${e}` }))
)

/** What a manifest entry weighs on the wire: `{"path":…,"size":…,"sha256":"…"},` (an upper bound for plain paths). */
export const entryWireBytes = (path: string, size: number) => Buffer.byteLength(path) + String(size).length + 110

/** Why a tree of these files breaks a cap, or undefined when it fits; `entries` are [path, size]. */
export const treeOverCaps = (entries: Iterable<readonly [string, number]>, caps: Caps = CAPS): string | undefined => {
  let count = 0
  let total = 0
  let wire = 200
  for (const [path, size] of entries) {
    count++
    if (count > caps.maxEntries) return `more than ${caps.maxEntries} files`
    if (size > caps.maxFileBytes) return `${path} is larger than ${caps.maxFileBytes} bytes`
    if (Buffer.byteLength(path) > caps.maxPathBytes) return `a path longer than ${caps.maxPathBytes} bytes`
    total += size
    wire += entryWireBytes(path, size)
  }
  if (total > caps.maxTotalBytes) return `more than ${caps.maxTotalBytes} bytes in all`
  if (wire > caps.maxManifestBytes) return `a manifest larger than ${caps.maxManifestBytes} bytes`
  return undefined
}

/**
 * A path that is both a file and a folder of the same tree (`a/b` and `a/b/c`), which no disk can hold, or
 * undefined. `paths` need not be sorted.
 */
export const fileAndFolder = (paths: ReadonlyArray<string>): string | undefined => {
  const files = new Set(paths)
  for (const p of paths) {
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
      if (files.has(p.slice(0, i))) return p.slice(0, i)
    }
  }
  return undefined
}
