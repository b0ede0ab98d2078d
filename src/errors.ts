/** The SyncError family: every failure agentsync reports, each with a human message and an exit code. */
import { Data, Option, Schema } from "effect"
import { errnoCode } from "./errno.js"

/** A required setting (environment variable, config key) is absent. */
export class MissingConfig extends Data.TaggedError("MissingConfig")<{
  readonly key: string
  readonly reason: string
}> {
  override get message() {
    return `missing configuration ${this.key}: ${this.reason}`
  }
}

/** User input is malformed: a file and line where there is one, and what is wrong. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  file: Schema.optional(Schema.String),
  line: Schema.optional(Schema.Number),
  field: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  /** The message's lines: a reason may hold several, a file's name (which may hold a newline) never starts one. */
  get lines(): ReadonlyArray<string> {
    const where =
      this.file === undefined ? "" : this.line === undefined ? `${this.file}: ` : `${this.file}:${this.line}: `
    const field = this.field === undefined ? "" : `${this.field}: `
    const [first = "", ...rest] = this.reason.split("\n")
    return [`${where}${field}${first}`, ...rest]
  }
  override get message() {
    return this.lines.join("\n")
  }
}

/** A token is missing, wrong, or reaches for another tenant. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.String
}) {
  override get message() {
    return `unauthorized: ${this.reason}`
  }
}

/**
 * How a call to the tenant API failed, for code to branch on: no usable connection (`Transport`: refused, reset,
 * an answer cut short), no answer in time (`Timeout`), a failure status (`Status`), or an answer that is not what
 * the API defines (`Decode`).
 */
export const ApiErrorKind = Schema.Literal("Transport", "Timeout", "Status", "Decode")
export type ApiErrorKind = typeof ApiErrorKind.Type

/** The tenant API could not be reached, did not answer in time, answered with a failure status, or answered nonsense. */
export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  /** The HTTP status where an answer came (0 when none did). */
  status: Schema.Number,
  reason: Schema.String,
  url: Schema.optional(Schema.String),
  /** Absent from the bodies of servers that predate it: those are answers with a failure status. */
  kind: Schema.optionalWith(ApiErrorKind, { default: () => "Status" as const })
}) {
  override get message() {
    const where = this.url === undefined ? "" : ` (${this.url})`
    switch (this.kind) {
      case "Transport":
        return `the connection to the API failed${where}: ${this.reason}`
      case "Timeout":
        return `the API did not answer in time${where}: ${this.reason}`
      case "Decode":
        return `unexpected answer from the API${where}: ${this.reason}`
      default:
        return `API error ${this.status}${this.url === undefined ? "" : ` from ${this.url}`}: ${this.reason}`
    }
  }
}

/** Both sides moved since the recorded base: the user has to decide. */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  reason: Schema.String,
  items: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
}) {
  /** The message's lines: one per item (a path, most often, which may hold a newline of its own). */
  get lines(): ReadonlyArray<string> {
    return [`conflict: ${this.reason}`, ...this.items.map((i) => `  ${i}`)]
  }
  override get message() {
    return this.lines.join("\n")
  }
}

/** An archive broke a safety rule; the whole bundle is rejected. */
export class TarballUnsafe extends Schema.TaggedError<TarballUnsafe>()("TarballUnsafe", {
  reason: Schema.String,
  entry: Schema.optional(Schema.String)
}) {
  override get message() {
    return `unsafe tarball${this.entry === undefined ? "" : ` (entry ${JSON.stringify(this.entry)})`}: ${this.reason}`
  }
}

/** What a server sent was refused before anything was written: a manifest over the caps, a path no pull may write. */
export class UnsafeRemote extends Schema.TaggedError<UnsafeRemote>()("UnsafeRemote", {
  reason: Schema.String,
  entry: Schema.optional(Schema.String),
  url: Schema.optional(Schema.String)
}) {
  override get message() {
    return `refused what the server sent${this.url === undefined ? "" : ` (${this.url})`}${this.entry === undefined ? "" : `, ${JSON.stringify(this.entry)}`}: ${this.reason}; nothing was written`
  }
}

/** The server cannot keep what a push would send (it predates a kind of entry); refused before anything is sent. */
export class ServerLacks extends Schema.TaggedError<ServerLacks>()("ServerLacks", {
  reason: Schema.String,
  items: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  url: Schema.optional(Schema.String)
}) {
  /** The message's lines: one per item (a path, most often, which may hold a newline of its own). */
  get lines(): ReadonlyArray<string> {
    return [
      `${this.reason}${this.url === undefined ? "" : ` (${this.url})`}; nothing was sent`,
      ...this.items.map((i) => `  ${i}`)
    ]
  }
  override get message() {
    return this.lines.join("\n")
  }
}

/** A database operation failed; never carries a password. */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `database: ${this.reason}`
  }
}

/** A field kept in memory only: never encoded, never decoded (a cause stays on the side that had it). */
const LocalOnly = Schema.optionalToOptional(Schema.Never, Schema.Unknown, {
  decode: () => Option.none(),
  encode: () => Option.none()
})

/** An import committed part of its work before failing (sent by the server as itself, without its cause). */
export class PartialImport extends Schema.TaggedError<PartialImport>()("PartialImport", {
  completed: Schema.NonNegativeInt,
  total: Schema.NonNegativeInt,
  reason: Schema.String,
  cause: LocalOnly
}) {
  override get message() {
    return `partial import: ${this.completed} of ${this.total} committed; ${this.reason}`
  }
}

/** What a failed file-system call says of the path, from its errno; `Other` for the rest. */
export type IoKind = "NotFound" | "NotADirectory" | "IsADirectory" | "Exists" | "PermissionDenied" | "Other"

export { errnoCode } from "./errno.js"

const IO_KINDS: Record<string, IoKind> = {
  ENOENT: "NotFound",
  ENOTDIR: "NotADirectory",
  EISDIR: "IsADirectory",
  EEXIST: "Exists",
  ENOTEMPTY: "Exists",
  EACCES: "PermissionDenied",
  EPERM: "PermissionDenied"
}

/** How a failed file-system call is classified, for callers that branch on it. */
export const ioKindOf = (e: unknown): IoKind => IO_KINDS[errnoCode(e) ?? ""] ?? "Other"

/** Nothing is at the path: it, or one of its folders, does not exist (or a file stands where a folder should). */
export const isMissing = (e: unknown): boolean => {
  const kind = ioKindOf(e)
  return kind === "NotFound" || kind === "NotADirectory"
}

/** A filesystem operation failed; `kind` says what of the path, from the cause's errno. */
export class IoError extends Data.TaggedError("IoError")<{
  readonly path: string
  readonly reason: string
  readonly cause?: unknown
}> {
  get kind(): IoKind {
    return ioKindOf(this.cause)
  }
  /** The message as one line: the path (which may hold a newline) never starts another. */
  get lines(): ReadonlyArray<string> {
    return [this.message]
  }
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** The one way a failed file-system call becomes an IoError: what was being done, and the cause's message. */
export const ioError =
  (path: string, what: string) =>
  (cause: unknown): IoError =>
    new IoError({
      path,
      reason: `${what}: ${cause instanceof Error ? cause.message.replace(/^[A-Z]+: /, "") : String(cause)}`,
      cause
    })

/** A subprocess exited non-zero (exit code -1: it could not be started); `step` names the step it ran for. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly command: string
  readonly exitCode: number
  readonly stderr: string
  readonly step?: string
}> {
  override get message() {
    // The last lines, and before them any `fatal:` / `error:` line (git names the file it could not use there).
    const lines = this.stderr.trim().split("\n")
    const last = lines.slice(-5)
    const key = lines
      .slice(0, -5)
      .filter((l) => /^(fatal|error): /.test(l))
      .slice(0, 3)
    const tail = [...key, ...last].join("\n")
    return `${this.step === undefined ? "" : `${this.step}: `}${this.command} exited with ${this.exitCode}${tail === "" ? "" : `:\n${tail}`}`
  }
}

/** Another run holds the lock. */
export class SyncInProgress extends Data.TaggedError("SyncInProgress")<{
  readonly lock: string
  /** Who holds it, when the lock says. */
  readonly holder?: string
}> {
  override get message() {
    return `another sync is in progress (lock ${this.lock}${this.holder === undefined ? "" : `, ${this.holder}`}); wait for it, or remove the lock if that process is not agentsync`
  }
}

/** The tenant's deploy lock is held by another deploy (or by the release it started, until that release ends). */
export class DeployLocked extends Data.TaggedError("DeployLocked")<{
  readonly holder: string
  readonly note: string
  readonly expiresAt: string
  readonly release?: number
}> {
  override get message() {
    const running = this.release === undefined ? "" : `; its release ${this.release} is still running on the server`
    return `the deploy lock is held by ${this.holder}${this.note === "" ? "" : ` (${JSON.stringify(this.note)})`} until ${this.expiresAt} unless renewed${running}: wait for it, or run \`agentsync deploy lock release\` if that deploy is dead`
  }
}

/** A release ended failed (its hook or its health check); `reactivated` is the release put back in its place. */
export class ReleaseFailed extends Data.TaggedError("ReleaseFailed")<{
  readonly release: number
  readonly reason: string
  readonly reactivated?: number
}> {
  override get message() {
    const back =
      this.reactivated === undefined
        ? "no earlier release was re-activated"
        : `release ${this.reactivated} was re-activated`
    return `release ${this.release} failed: ${this.reason}; ${back}`
  }
}

/** An interactive command was started without a terminal to draw on (output piped, run by a script). */
export class NeedsTerminal extends Data.TaggedError("NeedsTerminal")<{
  readonly command: string
  /** What to run instead. */
  readonly instead: string
}> {
  override get message() {
    return `${this.command} needs a terminal (stdin and stdout a TTY); in a script use \`${this.instead}\``
  }
}

/** The tenant server could not listen: the address, the system's code (EADDRINUSE, …) and what to do. */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  readonly address: string
  readonly code: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `cannot listen on ${this.address}: ${this.reason} (${this.code})`
  }
}

/** Every class of the family; `SyncError` and `isSyncError` are derived from this list. */
const SYNC_ERRORS = [
  MissingConfig,
  InvalidInput,
  Unauthorized,
  ApiError,
  Conflict,
  TarballUnsafe,
  UnsafeRemote,
  ServerLacks,
  DatabaseError,
  PartialImport,
  IoError,
  CommandFailed,
  SyncInProgress,
  DeployLocked,
  ReleaseFailed,
  NeedsTerminal,
  ListenFailed
] as const

export type SyncError = InstanceType<(typeof SYNC_ERRORS)[number]>

export const ExitCode = { Ok: 0, Failure: 1, Usage: 2, Conflict: 3 } as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** How the command line ends for an error: usage problems 2, decisions needed 3, the rest 1. */
export const exitCodeOf = (error: { readonly _tag: string }): ExitCode => {
  switch (error._tag) {
    case "MissingConfig":
    case "NeedsTerminal":
      return ExitCode.Usage
    case "Conflict":
      return ExitCode.Conflict
    default:
      return ExitCode.Failure
  }
}

export const isSyncError = (u: unknown): u is SyncError => SYNC_ERRORS.some((C) => u instanceof C)

/**
 * An error's message as the lines a terminal shows, each to be escaped whole: where a message holds a name that may
 * hold a newline, its class says where its lines break (`lines`); otherwise each newline of the message is one.
 */
export const messageLines = (e: SyncError): ReadonlyArray<string> => ("lines" in e ? e.lines : e.message.split("\n"))
