/** A download's GET on a plain `net` socket: the answer read by `responseReader`, its bytes read by the kernel straight into large slabs (`onread`), never copied again on their way to the archive's reader. */
import * as net from "node:net"
import { Chunk, Effect, Option, type Scope, Stream } from "effect"
import { BadFraming, type ResponseHead, responseReader } from "./httpResponse.js"
import { describe, type Transient, transient } from "./Transport.js"

/** An answer whose head has come: its body a stream of views of the slabs read into (never written again). */
export interface RawAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** Fails with Transient when the connection breaks off or the framing is refused (then `refused()` says why). */
  readonly body: Stream.Stream<Uint8Array, Transient>
  /** The framing refused in the body, if it was: the call's error, not a failure worth another attempt. */
  readonly refused: () => BadFraming | undefined
}

// The kernel reads into the free end of a slab; once less than a read's worth is left, a new slab is started. A slab
// is only ever read into once, so a view of it handed on stays what it was (the archive's reader and the staged
// files keep views); the slab is freed once no view of it is held.
const SLAB = 1024 * 1024
const MIN_READ = 128 * 1024
// Bytes read off the wire (framing included) since the consumer last took: above this the socket stops reading until
// it takes. Counted on the wire, not in body bytes, so what is held stays bounded whatever the framing.
const HIGH_WATER = 8 * 1024 * 1024
// A body piece shorter than this (a server's tiny chunks) is copied to the free end of a small slab of its own, next
// to the small pieces before it, and handed on as one view with them: the views held stay few (about two per KiB at
// most) however small the chunks are, instead of one object per chunk.
const SMALL_PIECE = 1024
const SMALL_SLAB = 64 * 1024

/** Whether `url` can be fetched here: plain HTTP (TLS and anything else go through the platform's client). */
export const rawGetApplies = (url: URL): boolean => url.protocol === "http:"

/**
 * GETs `url` on a connection of its own (closed after the answer), with `headers` (the Host header is added). Succeeds
 * once the answer's head has come; fails with Transient when no connection could be made or it broke off before the
 * head, and with BadFraming when the head is refused. The body is read as its consumer takes it (the socket pauses
 * when far ahead); the socket is destroyed when the scope closes, however the call ends.
 */
export const rawGet: (
  url: URL,
  headers: Readonly<Record<string, string>>
) => Effect.Effect<RawAnswer, Transient | BadFraming, Scope.Scope> = Effect.fn("SyncApiGet.rawGet")(function* (
  url: URL,
  headers: Readonly<Record<string, string>>
) {
  const c = yield* Effect.acquireRelease(
    Effect.sync(() => connect(url, headers)),
    (c) => Effect.sync(() => c.socket.destroy())
  )
  return yield* c.head
})

interface Connection {
  readonly socket: net.Socket
  readonly head: Effect.Effect<RawAnswer, Transient | BadFraming>
}

const connect = (url: URL, headers: Readonly<Record<string, string>>): Connection => {
  let slab = Buffer.allocUnsafeSlow(SLAB)
  let used = 0
  let head: ResponseHead | undefined
  let pending: Array<Uint8Array> = []
  /** Bytes read off the socket since the consumer last took (see HIGH_WATER). */
  let readSinceTake = 0
  /** Small pieces copied together: `small` holds them from `smallStart` to `smallEnd`, not handed on yet. */
  let small = Buffer.allocUnsafeSlow(SMALL_SLAB)
  let smallStart = 0
  let smallEnd = 0
  let ended = false
  let failure: Transient | undefined
  let framing: BadFraming | undefined
  /** An exception the reader threw that is not a refusal: a defect of this code, not the server's nor the network's. */
  let defect: { readonly cause: unknown } | undefined
  let paused = false
  /** The consumer waiting for the head or the body's next pieces. */
  let waiter: (() => void) | undefined
  const wake = () => {
    const w = waiter
    waiter = undefined
    w?.()
  }
  const fail = (e: Transient) => {
    if (failure === undefined && !ended) failure = e
    wake()
  }
  /** Hands on the small pieces copied so far as one view (never written again: the next are copied after it). */
  const flushSmall = () => {
    if (smallEnd === smallStart) return
    pending.push(small.subarray(smallStart, smallEnd))
    smallStart = smallEnd
  }
  const reader = responseReader({
    head: (h) => {
      head = h
      wake()
    },
    body: (piece) => {
      if (piece.length < SMALL_PIECE) {
        if (SMALL_SLAB - smallEnd < piece.length) {
          flushSmall()
          small = Buffer.allocUnsafeSlow(SMALL_SLAB)
          smallStart = 0
          smallEnd = 0
        }
        small.set(piece, smallEnd)
        smallEnd += piece.length
      } else {
        flushSmall()
        pending.push(piece)
      }
      wake()
    },
    end: () => {
      ended = true
      wake()
    }
  })
  const cutShort = (why: string) =>
    head === undefined ? transient(0, why, true) : transient(head.status, `connection lost during the answer: ${why}`)
  // A bracketed IPv6 literal is a URL's way of writing the host, not the socket's.
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
  const socket = net.connect({
    host,
    port: url.port === "" ? 80 : Number(url.port),
    noDelay: true,
    onread: {
      buffer: () => {
        if (SLAB - used < MIN_READ) {
          slab = Buffer.allocUnsafeSlow(SLAB)
          used = 0
        }
        return slab.subarray(used)
      },
      callback: (n) => {
        const view = slab.subarray(used, used + n)
        used += n
        readSinceTake += n
        try {
          reader.push(view)
        } catch (e) {
          // A refusal stands even when the answer had ended earlier in this read (bytes after its end): the consumer
          // is told before it is told of the end.
          if (e instanceof BadFraming) {
            framing = e
            failure = transient(e.status, e.message)
          } else defect = { cause: e }
          socket.destroy()
          wake()
          return false
        }
        if (ended) {
          socket.destroy()
          return false
        }
        // Nothing held (a 1xx head, framing alone): nothing of what was read is kept, so nothing counts against the mark.
        if (pending.length === 0 && smallEnd === smallStart) readSinceTake = 0
        paused = readSinceTake > HIGH_WATER
        return !paused
      }
    }
  })
  socket.on("end", () => {
    if (!reader.eof()) fail(cutShort("the connection ended before the answer did"))
    wake()
  })
  socket.on("error", (e) => fail(cutShort(describe(e))))
  socket.on("close", () => {
    if (!ended) fail(cutShort("connection closed"))
    wake()
  })
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`, "connection: close"]
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  socket.write(`${lines.join("\r\n")}\r\n\r\n`, "latin1")

  /**
   * The body's next pieces, all that is read; then, once they are taken: its failure if it broke off or was refused
   * (even after its end), none left once it has ended.
   */
  const take = Effect.async<Chunk.Chunk<Uint8Array>, Option.Option<Transient>>((resume) => {
    const ready = () => {
      flushSmall()
      if (pending.length > 0) {
        const pieces = Chunk.unsafeFromArray(pending)
        pending = []
        readSinceTake = 0
        if (paused && !socket.destroyed) {
          paused = false
          socket.resume()
        }
        resume(Effect.succeed(pieces))
      } else if (defect !== undefined) resume(Effect.die(defect.cause))
      else if (failure !== undefined) resume(Effect.fail(Option.some(failure)))
      else if (ended) resume(Effect.fail(Option.none()))
      else waiter = ready
    }
    ready()
    return Effect.sync(() => {
      waiter = undefined
    })
  })

  const answered = Effect.async<RawAnswer, Transient | BadFraming>((resume) => {
    const ready = () => {
      if (defect !== undefined) resume(Effect.die(defect.cause))
      else if (framing !== undefined) resume(Effect.fail(framing))
      else if (head !== undefined) {
        const h = head
        resume(
          Effect.succeed({
            status: h.status,
            headers: h.headers,
            body: Stream.repeatEffectChunkOption(take),
            refused: () => framing
          })
        )
      } else if (failure !== undefined) resume(Effect.fail(failure))
      else waiter = ready
    }
    ready()
    return Effect.sync(() => {
      waiter = undefined
    })
  })
  return { socket, head: answered }
}
