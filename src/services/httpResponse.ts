/** A strict, incremental reader of one HTTP/1.1 response: its head, then its body as framed by Content-Length, the chunked transfer coding or the connection's end, the body's pieces handed on as views of the input. */
import { Data } from "effect"

/** What part of a response its framing was refused in: `end` is a byte after the response's end. */
export type FramingField =
  | "status-line"
  | "header"
  | "content-length"
  | "transfer-encoding"
  | "chunk-size"
  | "chunk-data"
  | "trailer"
  | "end"

/** A response whose framing this reader refuses: `field` names what was wrong (a header, the status line, a chunk). */
export class BadFraming extends Data.TaggedError("BadFraming")<{
  readonly reason: string
  readonly field: FramingField
  /** The answer's status, 0 before its status line was read. */
  readonly status: number
}> {
  override get message() {
    return `bad HTTP framing in the answer${this.status === 0 ? "" : ` (status ${this.status})`}, ${this.field}: ${this.reason}`
  }
}

/** A response's head: its status and its headers, names lower-cased, a repeated field's values joined by ", ". */
export interface ResponseHead {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
}

/** Receives what the reader reads, synchronously: the head once, the body's pieces (views of the input), the end once. */
export interface ResponseSink {
  readonly head: (head: ResponseHead) => void
  readonly body: (piece: Buffer) => void
  readonly end: () => void
}

export interface ResponseReader {
  /** Reads the next bytes of the connection; throws BadFraming. */
  readonly push: (bytes: Buffer) => void
  /**
   * The connection ended. A body framed by the connection's end ends here; true when the response is whole (its end
   * given to the sink), false when the connection broke off before it was (cut short).
   */
  readonly eof: () => boolean
  /** Whether the whole response has been read. */
  readonly done: () => boolean
}

// A head longer than this is not an answer of ours (nor of a proxy's): refused, not held without bound.
export const MAX_HEAD = 64 * 1024
// A chunk-size line with its extensions, and the trailer section, within these.
const MAX_LINE = 4 * 1024
// Hexadecimal digits of a chunk size: 13 stay within a safe integer.
const MAX_SIZE_DIGITS = 13

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// A field value: visible characters, spaces and tabs, and obs-text (bytes 0x80-0xff, read as latin1).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/
const CHUNK_SIZE = /^([0-9A-Fa-f]+)[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/
const DIGITS = /^\d{1,15}$/
const CRLF_CRLF = Buffer.from("\r\n\r\n", "latin1")
// An empty line ended by LF alone: a head of LF-only lines would never show CRLF CRLF, and is refused at it.
const LF_LF = Buffer.from("\n\n", "latin1")

/** Splits a head's text (no final empty line) into its lines, refusing a lone CR or LF. */
const linesOf = (text: string, status: number, field: FramingField): Array<string> => {
  const lines = text.split("\r\n")
  for (const line of lines)
    if (line.includes("\r") || line.includes("\n"))
      throw new BadFraming({ reason: "a line ended by a lone CR or LF", field, status })
  return lines
}

/** Reads header lines into `into` (lower-cased names, repeated values joined), refusing what is not a header field. */
const fieldsOf = (lines: ReadonlyArray<string>, into: Record<string, string>, status: number, field: FramingField) => {
  for (const line of lines) {
    const colon = line.indexOf(":")
    if (line.startsWith(" ") || line.startsWith("\t"))
      throw new BadFraming({ reason: "a folded header line (obs-fold)", field, status })
    const name = colon === -1 ? "" : line.slice(0, colon)
    if (!TOKEN.test(name))
      throw new BadFraming({ reason: `not a header field: ${JSON.stringify(line.slice(0, 80))}`, field, status })
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "")
    if (!FIELD_VALUE.test(value))
      throw new BadFraming({ reason: `a control character in the value of ${name}`, field, status })
    const key = name.toLowerCase()
    const had = into[key]
    into[key] = had === undefined ? value : `${had}, ${value}`
  }
}

type Framing =
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" }

/** How a response's body is framed (RFC 9112 6.3), refusing what could be read two ways. */
const framingOf = (status: number, minor: string, headers: Readonly<Record<string, string>>): Framing => {
  const te = headers["transfer-encoding"]
  const cl = headers["content-length"]
  if (status === 204 || status === 304) return { kind: "length", length: 0 }
  if (te !== undefined) {
    if (cl !== undefined)
      throw new BadFraming({ reason: "both Transfer-Encoding and Content-Length", field: "transfer-encoding", status })
    if (minor === "0")
      throw new BadFraming({ reason: "Transfer-Encoding in an HTTP/1.0 answer", field: "transfer-encoding", status })
    if (te.trim().toLowerCase() !== "chunked")
      throw new BadFraming({
        reason: `a transfer coding other than chunked: ${te.slice(0, 80)}`,
        field: "transfer-encoding",
        status
      })
    return { kind: "chunked" }
  }
  if (cl !== undefined) {
    // Repeated (or listed) lengths are accepted only when they all say the same.
    const values = cl.split(",").map((v) => v.trim())
    const [first] = values
    if (first === undefined || !DIGITS.test(first) || values.some((v) => v !== first))
      throw new BadFraming({ reason: `not one decimal length: ${cl.slice(0, 80)}`, field: "content-length", status })
    return { kind: "length", length: Number(first) }
  }
  return { kind: "close" }
}

/**
 * A reader of one response to a GET on a connection that is closed after it: informational (1xx) heads skipped, the
 * final head given to the sink, then its body. Refused (BadFraming): a head over `MAX_HEAD`, a status line that is not
 * HTTP/1.x's, a header line that is not a field (folded, without a name, a control character), both
 * Transfer-Encoding and Content-Length, a coding other than chunked, lengths that disagree or are not decimal, a chunk
 * size that is not hexadecimal or a chunk not followed by CRLF, an oversized trailer, a 101, a head whose lines end
 * by LF alone (refused at its empty line, which CRLF CRLF would never match), and any byte after the response's end.
 */
export const responseReader = (sink: ResponseSink): ResponseReader => {
  let state: "head" | "length" | "size" | "data" | "data-end" | "trailer" | "close" | "done" = "head"
  let status = 0
  /** Head, chunk-size or trailer bytes that arrived in pieces (small: each within its cap). */
  let held: Buffer = Buffer.alloc(0)
  /** Body bytes still to come: of the whole body (length), or of the current chunk (data). */
  let remain = 0
  /** Bytes of the CRLF after a chunk's data still to come. */
  let crlfLeft = 0
  let trailerBytes = 0
  const bad = (reason: string, field: FramingField): BadFraming => new BadFraming({ reason, field, status })

  const finish = () => {
    state = "done"
    sink.end()
  }

  /** A complete head's text (without its final CRLF CRLF): true when it was the final one. */
  const readHead = (text: string): boolean => {
    const lines = linesOf(text, status, "header")
    const statusLine = lines[0] ?? ""
    const matched = STATUS_LINE.exec(statusLine)
    if (matched === null)
      throw bad(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`, "status-line")
    const code = Number(matched[2])
    status = code
    if (code === 101) throw bad("a switch of protocols, which a GET never asked for", "status-line")
    const headers: Record<string, string> = {}
    fieldsOf(lines.slice(1), headers, code, "header")
    if (code < 200) return false
    const framing = framingOf(code, matched[1] ?? "1", headers)
    sink.head({ status: code, headers })
    if (framing.kind === "chunked") state = "size"
    else if (framing.kind === "close") state = "close"
    else if (framing.length === 0) finish()
    else {
      state = "length"
      remain = framing.length
    }
    return true
  }

  /** Reads a line (up to CRLF) that may arrive in pieces, from `at`; the line and where it ended, or undefined. */
  const line = (
    bytes: Buffer,
    at: number,
    field: FramingField
  ): { readonly text: string; readonly next: number } | undefined => {
    const lf = bytes.indexOf(0x0a, at)
    const end = lf === -1 ? bytes.length : lf + 1
    if (held.length + (end - at) > MAX_LINE) throw bad(`a line longer than ${MAX_LINE} bytes`, field)
    const part = bytes.subarray(at, end)
    held = held.length === 0 ? Buffer.from(part) : Buffer.concat([held, part])
    if (lf === -1) return undefined
    const whole = held
    held = Buffer.alloc(0)
    if (whole.length < 2 || whole[whole.length - 2] !== 0x0d) throw bad("a line ended by a lone LF", field)
    const text = whole.toString("latin1", 0, whole.length - 2)
    if (text.includes("\r")) throw bad("a lone CR inside a line", field)
    return { text, next: end }
  }

  const push = (bytes: Buffer): void => {
    let at = 0
    /** Hands on what is left of a counted run of body bytes from this piece (a view of it); true when the run is done. */
    const counted = (): boolean => {
      const n = Math.min(remain, bytes.length - at)
      sink.body(at === 0 && n === bytes.length ? bytes : bytes.subarray(at, at + n))
      at += n
      remain -= n
      return remain === 0
    }
    while (at < bytes.length) {
      switch (state) {
        case "head": {
          // The terminator may straddle pieces: search from just before this piece's start, within the cap.
          const look = Math.min(bytes.length, at + MAX_HEAD + 4)
          const tail = held.subarray(Math.max(0, held.length - 3))
          const window = Buffer.concat([tail, bytes.subarray(at, look)])
          const found = window.indexOf(CRLF_CRLF)
          const bare = window.indexOf(LF_LF)
          if (bare !== -1 && (found === -1 || bare < found)) throw bad("a line ended by a lone LF", "header")
          if (found === -1) {
            if (held.length + (look - at) > MAX_HEAD) throw bad(`a head longer than ${MAX_HEAD} bytes`, "header")
            held = Buffer.concat([held, bytes.subarray(at, look)])
            at = look
            break
          }
          // The head ends in this piece, `taken` bytes past `at` (its CRLF CRLF included).
          const taken = found + 4 - tail.length
          const headBytes = Buffer.concat([held, bytes.subarray(at, at + taken)])
          if (headBytes.length - 4 > MAX_HEAD) throw bad(`a head longer than ${MAX_HEAD} bytes`, "header")
          held = Buffer.alloc(0)
          at += taken
          readHead(headBytes.toString("latin1", 0, headBytes.length - 4))
          break
        }
        case "length": {
          if (counted()) finish()
          break
        }
        case "close": {
          sink.body(at === 0 ? bytes : bytes.subarray(at))
          at = bytes.length
          break
        }
        case "size": {
          const read = line(bytes, at, "chunk-size")
          if (read === undefined) {
            at = bytes.length
            break
          }
          at = read.next
          const matched = CHUNK_SIZE.exec(read.text)
          const digits = matched?.[1]
          if (digits === undefined || digits.length > MAX_SIZE_DIGITS)
            throw bad(`not a chunk size: ${JSON.stringify(read.text.slice(0, 80))}`, "chunk-size")
          const size = Number.parseInt(digits, 16)
          if (size === 0) state = "trailer"
          else {
            remain = size
            state = "data"
          }
          break
        }
        case "data": {
          if (counted()) {
            state = "data-end"
            crlfLeft = 2
          }
          break
        }
        case "data-end": {
          const expected = crlfLeft === 2 ? 0x0d : 0x0a
          if (bytes[at] !== expected) throw bad("a chunk's data not followed by CRLF (its size is wrong)", "chunk-data")
          at++
          crlfLeft--
          if (crlfLeft === 0) state = "size"
          break
        }
        case "trailer": {
          const before = at
          const read = line(bytes, at, "trailer")
          trailerBytes += (read === undefined ? bytes.length : read.next) - before
          if (trailerBytes > MAX_HEAD) throw bad(`a trailer section longer than ${MAX_HEAD} bytes`, "trailer")
          if (read === undefined) {
            at = bytes.length
            break
          }
          at = read.next
          if (read.text === "") finish()
          else fieldsOf([read.text], {}, status, "trailer")
          break
        }
        case "done":
          throw bad("bytes after the end of the answer", "end")
      }
    }
  }

  return {
    push,
    eof: () => {
      if (state === "close") finish()
      return state === "done"
    },
    done: () => state === "done"
  }
}
