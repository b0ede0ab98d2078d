/** A download's GET on a plain `net` socket: the answer read by `responseReader`, its bytes read by the kernel straight into large slabs (`onread`), never copied again on their way to the archive's reader, the slabs read into again once their views are let go. */
import * as net from "node:net"
import { Chunk, Effect, Option, type Scope, Stream } from "effect"
import { type Holds, reusable } from "./heldViews.js"
import { BadFraming, type ResponseHead, responseReader } from "./httpResponse.js"
import { describe, type Transient, transient } from "./Transport.js"

/**
 * An answer whose head has come: its body a stream of views of the slabs read into. Unless `reuse` was asked for, a
 * slab is never read into again; with it (and a 2xx status), a piece stays what it was until the body's next pull,
 * and after that only while a view of its slab is held (`heldViews.hold`).
 */
export interface RawAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** Fails with Transient when the connection breaks off or the framing is refused (then `refused()` says why). */
  readonly body: Stream.Stream<Uint8Array, Transient>
  /** The framing refused in the body, if it was: the call's error, not a failure worth another attempt. */
  readonly refused: () => BadFraming | undefined
}

// The kernel reads into the free end of a slab; once less than a read's worth is left, another slab is started. Each
// piece handed on is a view of a slab, read into once. With `reuse`, a slab whose pieces all went out in pulls before
// the consumer's latest, and of which no view is held, is read into again from its start: a fresh slab's pages are
// first touched by the kernel's copy into them (page faults, zeroed pages), about a tenth of a download's CPU. Without
// it, a slab is freed once no view of it is held.
const SLAB = 1024 * 1024
const MIN_READ = 128 * 1024
// Slabs kept free for the next reads, and slabs moved on from that are watched for their last view (past these, the
// oldest are forgotten: freed by the collector as before, never read into again).
const FREE_SLABS = 24
const WATCHED_SLABS = 64
/** A slab's `last` while some of its pieces wait for the consumer's pull. */
const WAITING = Number.POSITIVE_INFINITY
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

/** How a body's consumer uses its pieces. */
export interface RawGetOptions {
  /**
   * The consumer is done with a piece by its next pull, but for views it `hold`s (see `heldViews`): the slabs of a 2xx
   * answer's body are then read into again once let go.
   */
  readonly reuse?: boolean
}

/** A GET sent on a connection of its own, its answer not yet awaited (see `startGet`). */
export interface StartedGet {
  /**
   * As `rawGet`: the answer once its head has come. One-shot: only the first await gets it, a later one undefined
   * (a retry never reads an answer whose body an earlier attempt read from).
   */
  readonly answer: Effect.Effect<RawAnswer | undefined, Transient | BadFraming>
  /** Destroys the socket now (a GET that will not be read on): safe to run again, and after the scope's end. */
  readonly close: Effect.Effect<void>
}

/**
 * Sends a GET of `url` now on a connection of its own (closed after the answer), with `headers` (the Host header is
 * added), and succeeds at once: the server answers while the caller does other work, and the answer's first bytes are
 * read (up to the socket's mark, see HIGH_WATER) before anyone asks for them. The socket is destroyed when the scope
 * closes, however the call ends and whether or not the answer was awaited; a connection that fails meanwhile is the
 * answer's failure, never an unhandled error.
 */
export const startGet = (
  url: URL,
  headers: Readonly<Record<string, string>>,
  options: RawGetOptions = {}
): Effect.Effect<StartedGet, never, Scope.Scope> =>
  Effect.map(connected(url, headers, options), (c) => {
    let taken = false
    return {
      answer: Effect.suspend(() => {
        if (taken) return Effect.succeed(undefined)
        taken = true
        return c.head
      }),
      close: Effect.sync(() => c.socket.destroy())
    }
  })

/** A connection sending its GET now, its socket destroyed when the scope closes. */
const connected = (url: URL, headers: Readonly<Record<string, string>>, options: RawGetOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => connect(url, headers, options.reuse === true)),
    (c) => Effect.sync(() => c.socket.destroy())
  )

/**
 * GETs `url` on a connection of its own (closed after the answer), with `headers` (the Host header is added). Succeeds
 * once the answer's head has come; fails with Transient when no connection could be made or it broke off before the
 * head, and with BadFraming when the head is refused. The body is read as its consumer takes it (the socket pauses
 * when far ahead); the socket is destroyed when the scope closes, however the call ends.
 */
export const rawGet: (
  url: URL,
  headers: Readonly<Record<string, string>>,
  options?: RawGetOptions
) => Effect.Effect<RawAnswer, Transient | BadFraming, Scope.Scope> = Effect.fn("SyncApiGet.rawGet")(function* (
  url: URL,
  headers: Readonly<Record<string, string>>,
  options: RawGetOptions = {}
) {
  return yield* (yield* connected(url, headers, options)).head
})

interface Connection {
  readonly socket: net.Socket
  readonly head: Effect.Effect<RawAnswer, Transient | BadFraming>
}

/** A slab read into: the views of it its consumer holds, and the pull its last piece went out in (`WAITING`: not yet). */
interface Slab {
  readonly bytes: Buffer
  readonly holds: Holds
  last: number
}

const connect = (url: URL, headers: Readonly<Record<string, string>>, reuse: boolean): Connection => {
  /** Slabs ready to be read into again, and those moved on from whose views may still be in use, oldest first. */
  const free: Array<Slab> = []
  let watched: Array<Slab> = []
  /** The consumer's pulls of the body so far. */
  let pulls = 0
  /** Whether slabs are read into again: asked for, and the answer is a 2xx (a failure's body is read whole, kept). */
  let reusing = false
  const newSlab = (): Slab => {
    const again = free.pop()
    if (again !== undefined) {
      again.last = -1
      return again
    }
    const bytes = Buffer.allocUnsafeSlow(SLAB)
    return { bytes, holds: reusable(bytes.buffer), last: -1 }
  }
  let slab = newSlab()
  let used = 0
  /** Marks the slab a piece handed on is a view of as having a piece that waits for the consumer's pull. */
  const waiting = (piece: Uint8Array) => {
    if (!reusing) return
    const of = piece.buffer === slab.bytes.buffer ? slab : watched.find((s) => s.bytes.buffer === piece.buffer)
    if (of !== undefined) of.last = WAITING
  }
  /**
   * At the consumer's pull: the slabs whose pieces all went out in earlier pulls and of which no view is held are free
   * again; those of the pieces going out now go out in this pull.
   */
  const pulled = () => {
    pulls++
    if (!reusing) return
    const still: Array<Slab> = []
    for (const s of watched) {
      if (s.last < pulls && s.holds.count === 0) {
        if (free.length < FREE_SLABS) free.push(s)
      } else still.push(s)
    }
    watched = still.length > WATCHED_SLABS ? still.slice(still.length - WATCHED_SLABS) : still
    for (const s of watched) if (s.last === WAITING) s.last = pulls
    if (slab.last === WAITING) slab.last = pulls
  }
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
      reusing = reuse && h.status >= 200 && h.status < 300
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
        waiting(piece)
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
          if (reusing) watched.push(slab)
          slab = newSlab()
          used = 0
        }
        return slab.bytes.subarray(used)
      },
      callback: (n) => {
        const view = slab.bytes.subarray(used, used + n)
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
        pulled()
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
