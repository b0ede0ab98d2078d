// The download's HTTP/1.1 response reader reads back any response framed by Content-Length, chunks (with extensions
// and trailers) or the connection's end, however it is cut into pieces; it never takes a prefix for the whole answer;
// and it refuses, naming the field, every framing a hostile or broken server could make read two ways.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { BadFraming, MAX_HEAD, type ResponseHead, responseReader } from "../../src/services/httpResponse.js"
import { cutAt } from "../support/bytes.js"

interface Read {
  heads: Array<ResponseHead>
  body: Array<Buffer>
  ends: number
  whole: boolean
}

/** Feeds `pieces` to a fresh reader, then the connection's end; what it read, or what it threw. */
const readAll = (pieces: ReadonlyArray<Buffer>, eof = true): Read => {
  const out: Read = { heads: [], body: [], ends: 0, whole: false }
  const reader = responseReader({
    head: (h) => out.heads.push(h),
    body: (p) => out.body.push(Buffer.from(p)),
    end: () => out.ends++
  })
  for (const p of pieces) if (p.length > 0) reader.push(p)
  out.whole = eof ? reader.eof() : reader.done()
  return out
}

const refusal = (text: string | Buffer): BadFraming => {
  const bytes = typeof text === "string" ? Buffer.from(text, "latin1") : text
  try {
    readAll([bytes])
  } catch (e) {
    if (e instanceof BadFraming) return e
    throw e
  }
  throw new Error(`accepted: ${JSON.stringify(bytes.toString("latin1").slice(0, 120))}`)
}

const token = fc
  .stringMatching(/^[a-z][a-z0-9-]{0,15}$/)
  .filter((n) => !["content-length", "transfer-encoding"].includes(n))
const fieldValue = fc.stringMatching(/^[!-~]([ !-~]{0,30}[!-~])?$/)
const framing = fc.oneof(
  fc.constant({ kind: "length" as const }),
  fc.record({
    kind: fc.constant("chunked" as const),
    sizes: fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 8 }),
    extension: fc.boolean(),
    upper: fc.boolean(),
    trailers: fc.array(fc.tuple(token, fieldValue), { maxLength: 2 })
  }),
  fc.constant({ kind: "close" as const })
)
const response = fc.record({
  status: fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
  informational: fc.boolean(),
  headers: fc.array(fc.tuple(token, fieldValue), { maxLength: 5 }),
  body: fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)),
  framing,
  cuts: fc.array(fc.nat(), { maxLength: 12 })
})
type Response = typeof response extends fc.Arbitrary<infer A> ? A : never

/** The response's bytes as a server would write them. */
const encode = (r: Response): Buffer => {
  const lines = [`HTTP/1.1 ${r.status} Some Reason`, ...r.headers.map(([n, v]) => `${n}: ${v}`)]
  const f = r.framing
  if (f.kind === "length") lines.push(`Content-Length: ${r.body.length}`)
  if (f.kind === "chunked") lines.push("Transfer-Encoding: chunked")
  const head = Buffer.from(
    `${r.informational ? "HTTP/1.1 100 Continue\r\n\r\n" : ""}${lines.join("\r\n")}\r\n\r\n`,
    "latin1"
  )
  if (f.kind !== "chunked") return Buffer.concat([head, r.body])
  const parts: Array<Buffer> = [head]
  let at = 0
  for (const size of f.sizes) {
    if (at >= r.body.length) break
    const piece = r.body.subarray(at, at + size)
    at += piece.length
    const hex = piece.length.toString(16)
    parts.push(
      Buffer.from(`${f.upper ? hex.toUpperCase() : hex}${f.extension ? ';name="v"' : ""}\r\n`),
      piece,
      Buffer.from("\r\n")
    )
  }
  if (at < r.body.length)
    parts.push(Buffer.from(`${(r.body.length - at).toString(16)}\r\n`), r.body.subarray(at), Buffer.from("\r\n"))
  parts.push(Buffer.from(`0\r\n${f.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`))
  return Buffer.concat(parts)
}

describe("responseReader: what a server sends, read back", () => {
  it("reads any response whole however it is cut: head once, the body's bytes, the end once", () => {
    fc.assert(
      fc.property(response, (r) => {
        const read = readAll(cutAt(encode(r), r.cuts))
        expect(read.heads).toHaveLength(1)
        expect(read.heads[0]?.status).toBe(r.status)
        for (const [name, value] of r.headers) expect(read.heads[0]?.headers[name]).toContain(value)
        expect(Buffer.concat(read.body).equals(r.body)).toBe(true)
        expect(read.ends).toBe(1)
        expect(read.whole).toBe(true)
      }),
      { numRuns: 400 }
    )
  })

  it("never takes a prefix of a framed answer for the whole of it (a connection cut short is not an end)", () => {
    fc.assert(
      fc.property(
        response.filter((r) => r.framing.kind !== "close"),
        fc.nat(),
        (r, at) => {
          const bytes = encode(r)
          const cut = at % bytes.length
          const read = readAll(cutAt(bytes.subarray(0, cut), r.cuts))
          expect(read.whole).toBe(false)
          expect(read.ends).toBe(0)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("hands the body on as views of the input, not copies", () => {
    const input = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "latin1")
    const seen: Array<Buffer> = []
    const reader = responseReader({ head: () => {}, body: (p) => seen.push(p), end: () => {} })
    reader.push(input)
    expect(seen).toHaveLength(1)
    expect(seen[0]?.buffer).toBe(input.buffer)
    expect(seen[0]?.toString()).toBe("hello")
  })

  it("reads 204 and 304 as no body, and equal repeated lengths as one", () => {
    expect(readAll([Buffer.from("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n")], false).ends).toBe(1)
    expect(readAll([Buffer.from("HTTP/1.1 204 No Content\r\n\r\n")], false).whole).toBe(true)
    const repeated = readAll([Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2, 2\r\n\r\nok")])
    expect(Buffer.concat(repeated.body).toString()).toBe("ok")
  })
})

describe("responseReader: a hostile server's framing, refused", () => {
  const refused: Array<[string, string | Buffer, string]> = [
    ["not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", "status-line"],
    ["HTTP/2 framing", "HTTP/2 200\r\n\r\n", "status-line"],
    ["a status of two digits", "HTTP/1.1 20 OK\r\n\r\n", "status-line"],
    ["a switch of protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "status-line"],
    [
      "both codings",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "transfer-encoding"
    ],
    ["a coding other than chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "transfer-encoding"],
    ["chunked in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer-encoding"],
    [
      "lengths that disagree",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "content-length"
    ],
    ["a negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "content-length"],
    ["a hexadecimal length", "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "content-length"],
    ["a length beyond a safe integer", "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n", "content-length"],
    ["a folded header", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  more\r\nContent-Length: 0\r\n\r\n", "header"],
    ["a space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "header"],
    ["a line without a colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", "header"],
    ["a NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 0\r\n\r\n", "header"],
    ["a lone LF in the head", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "header"],
    ["a head of lines ended by LF alone", "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", "header"],
    ["a head ended by CRLF then a lone LF", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\nabc", "header"],
    [
      "a chunk size that is not hexadecimal",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "chunk-size"
    ],
    ["a negative chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", "chunk-size"],
    [
      "a chunk size beyond a safe integer",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20000000000000\r\n",
      "chunk-size"
    ],
    [
      "a chunk size line ended by LF alone",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
      "chunk-size"
    ],
    [
      "a chunk longer than its size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
      "chunk-data"
    ],
    [
      "a chunk shorter than its size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nhello\r\n0\r\n\r\nxx",
      "chunk-data"
    ],
    ["a bad trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n", "trailer"],
    ["a body longer than its length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", "end"],
    [
      "bytes after the last chunk",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n",
      "end"
    ],
    ["a head without end", `HTTP/1.1 200 OK\r\nX-A: ${"a".repeat(MAX_HEAD)}`, "header"],
    [
      "a chunk-size line without end",
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${"x".repeat(5000)}`,
      "chunk-size"
    ]
  ]
  for (const [what, text, field] of refused)
    it(`refuses ${what}, naming ${field}`, () => {
      const e = refusal(text)
      expect(e.field).toBe(field)
      expect(e.message).toContain(field)
    })

  it("names the status in the message once it has been read", () => {
    expect(refusal("HTTP/1.1 503 Busy\r\nContent-Length: x\r\n\r\n").message).toMatch(/status 503.*content-length/)
  })

  it("refuses the same however the refused answer is cut", () => {
    fc.assert(
      fc.property(fc.constantFrom(...refused), fc.array(fc.nat(), { maxLength: 10 }), ([, text, field], cuts) => {
        const bytes = typeof text === "string" ? Buffer.from(text, "latin1") : text
        expect(() => readAll(cutAt(bytes, cuts))).toThrow(BadFraming)
        try {
          readAll(cutAt(bytes, cuts))
        } catch (e) {
          expect(e instanceof BadFraming && e.field).toBe(field)
        }
      }),
      { numRuns: 300 }
    )
  })
})
