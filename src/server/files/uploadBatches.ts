/**
 * An upload's received files in batches: gathered into arenas kept across uploads, each batch stored as pending
 * blobs once full while the next is read.
 */
import type * as SqlError from "@effect/sql/SqlError"
import { Effect, Fiber } from "effect"
import type { PendingBlob } from "./blobWrite.js"
import { BATCH_ROWS } from "./stored.js"

// Blob inserts are batched by bytes (the input buffers their files keep alive) so memory stays flat however large
// the tree.
export const BATCH_BYTES = 8 * 1024 * 1024
// A batch's files are read into an arena of this size (a batch ends after the input piece that reaches BATCH_BYTES,
// so it may go a little past it); a file that does not fit in what is left gets a buffer of its own.
export const ARENA_BYTES = BATCH_BYTES + 1024 * 1024
// The first arena of an upload in the trailer form, where none is kept (it grows as files arrive, up to ARENA_BYTES).
export const MIN_ARENA_BYTES = 64 * 1024
/**
 * Batches stored at once: one, while the next is read. What an upload holds stays bounded: this many batches stored
 * and one being read, each about BATCH_BYTES. Two were measured and not kept (the performance log): two COPYs at once,
 * each on a connection of its own, cost PostgreSQL more CPU (0.90 against 0.71 s a first push of 100 MiB), and a
 * second batch read ahead to wait for the first's COPY made the POST no shorter.
 */
export const IN_FLIGHT = 1
/** Arenas of ARENA_BYTES a server keeps between uploads: as many as one upload has in use at once. */
export const KEPT_ARENAS = IN_FLIGHT + 1

/**
 * Arenas of ARENA_BYTES used again across uploads: a fresh one costs its first touch (the kernel maps and zeroes each
 * page as it is first written) and counts as memory outside the collector's heap until it is collected. `give` is for
 * an arena nothing reads any more: its batch stored (the COPY has ended, so no write still holds a view of it), or
 * never handed to a write.
 */
export interface ArenaPool {
  readonly take: () => Buffer | undefined
  readonly give: (arena: Buffer) => void
  readonly held: () => number
}

export const arenaPool = (keep: number = KEPT_ARENAS): ArenaPool => {
  const free: Array<Buffer> = []
  return {
    take: () => free.pop(),
    give: (arena) => {
      if (arena.length === ARENA_BYTES && free.length < keep && !free.includes(arena)) free.push(arena)
    },
    held: () => free.length
  }
}

export interface BatchDeps {
  /** Stores a batch as pending blobs; answers the hashes it left alone (held by the tenant already). */
  readonly write: (
    blobs: ReadonlyArray<PendingBlob>,
    noneHeld: boolean
  ) => Effect.Effect<ReadonlyArray<string>, SqlError.SqlError>
  /** Run once, before the first batch is stored: registers the upload; answers whether the tenant held no blob. */
  readonly register: Effect.Effect<boolean, SqlError.SqlError>
  readonly arenas: ArenaPool
  /** A hash a stored batch left alone. */
  readonly onHeld: (sha256: string) => void
}

interface Inflight {
  readonly fiber: Fiber.RuntimeFiber<ReadonlyArray<string>, SqlError.SqlError>
  readonly arena: Buffer | undefined
}

export const uploadBatches = (deps: BatchDeps) => {
  let pending: Array<PendingBlob> = []
  let pendingBytes = 0
  // The input buffers the pending batch's files are views of (see `gather`), each counted once in `pendingBytes`.
  const viewed = new Set<ArrayBufferLike>()
  // Files cut across input pieces are gathered into arenas: the batch being read fills one while the batch before
  // it, in another, is stored; an arena is used again only once its batch's write has ended (a buffer per file cost
  // its page faults and a sixth of the upload's CPU in garbage collection).
  let arena: Buffer | undefined
  let arenaAt = 0
  let arenaBytes = ARENA_BYTES
  // The trailer form does not know its size before its files: its arenas start small and grow as files arrive.
  let growing = false
  // Arenas of this upload whose batch is stored.
  const spares: Array<Buffer> = []
  // Oldest first; a write leaves this list only once joined, so whatever ends the upload meanwhile interrupts it.
  const inflight: Array<Inflight> = []
  let registered = false
  // Whether the tenant is expected to hold none of the blobs: it held none at the first batch, and no batch found one.
  let noneHeld = false

  /** An arena for the next files: one of this upload's, one kept by the server, else a fresh one. */
  const nextArena = (): Buffer => {
    const spare = spares.pop()
    if (spare !== undefined && spare.length >= arenaBytes) return spare
    const kept = deps.arenas.take()
    if (kept !== undefined) {
      // A kept arena is paid for already: the batch needs no smaller one, nor to grow.
      arenaBytes = ARENA_BYTES
      return kept
    }
    return Buffer.allocUnsafeSlow(arenaBytes)
  }

  const take = (size: number): Buffer => {
    if (arena === undefined) {
      arena = nextArena()
      arenaAt = 0
    }
    if (arenaAt + size > arena.length) {
      if (!growing || arenaBytes >= ARENA_BYTES || size > ARENA_BYTES) return Buffer.allocUnsafe(size)
      // A larger arena for the rest of the batch: the files already in this one keep it until the batch is stored.
      arenaBytes = Math.min(ARENA_BYTES, Math.max(arenaBytes * 4, size))
      arena = deps.arenas.take() ?? Buffer.allocUnsafeSlow(arenaBytes)
      arenaBytes = arena.length
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

  /** The oldest write joined: its held hashes taken, its arena free for this upload's next batch. */
  const settleOldest = Effect.suspend(() => {
    const first = inflight[0]
    if (first === undefined) return Effect.void
    return Effect.flatMap(Fiber.join(first.fiber), (leftAlone) =>
      Effect.sync(() => {
        inflight.shift()
        for (const sha of leftAlone) deps.onHeld(sha)
        if (leftAlone.length > 0) noneHeld = false
        if (first.arena !== undefined) spares.push(first.arena)
      })
    )
  })

  const settleAll: Effect.Effect<void, SqlError.SqlError> = Effect.suspend(() =>
    inflight.length === 0 ? Effect.void : Effect.zipRight(settleOldest, settleAll)
  )

  const registerOnce = Effect.suspend(() =>
    registered
      ? Effect.void
      : Effect.zipRight(
          Effect.sync(() => {
            registered = true
          }),
          Effect.map(deps.register, (none) => {
            noneHeld = none
          })
        )
  )

  /** The pending batch handed to a write (once fewer than IN_FLIGHT run); with none pending, nothing. */
  const flush = Effect.suspend(() => {
    if (pending.length === 0) return Effect.void
    const rows = pending
    const rowsArena = arena
    pending = []
    pendingBytes = 0
    viewed.clear()
    arena = undefined
    return (inflight.length >= IN_FLIGHT ? settleOldest : Effect.void).pipe(
      Effect.zipRight(registerOnce),
      // A daemon: the archive reader may run this on a fiber of its own that ends before the join; the upload's
      // cleanup interrupts it (and waits for it) before deleting, so no insert lands after it.
      Effect.zipRight(Effect.suspend(() => Effect.forkDaemon(deps.write(rows, noneHeld)))),
      Effect.flatMap((fiber) =>
        Effect.sync(() => {
          inflight.push({ fiber, arena: rowsArena })
        })
      )
    )
  })

  return {
    gather,
    /** A file's bytes pending in the batch being read. */
    add: (blob: PendingBlob) => {
      pending.push(blob)
      pendingBytes += blob.data.length
    },
    /** Whether the batch being read is full (or, `last`, whether any file is pending). */
    full: (last: boolean) =>
      pendingBytes >= BATCH_BYTES || pending.length >= BATCH_ROWS || (last && pending.length > 0),
    /** Arenas sized for an upload: `bytes` at most, or, `grow`, from small up as its files arrive. */
    size: (bytes: number, grow: boolean) => {
      arenaBytes = Math.min(ARENA_BYTES, bytes)
      growing = grow
    },
    flush,
    /** The last batch handed to a write, then every write joined. */
    finish: Effect.zipRight(flush, settleAll),
    /** Whether a batch was handed to a write (the upload registered). */
    registered: () => registered,
    /** Every write still running interrupted (its transaction rolls back, or, committed, its rows stay). */
    interrupt: Effect.suspend(() => {
      const fibers = inflight.splice(0).map((w) => w.fiber)
      return fibers.length === 0 ? Effect.void : Effect.asVoid(Fiber.interruptAll(fibers))
    }),
    /**
     * The arenas nothing reads any more back to the server's pool: those of stored batches and the one being read
     * (never handed to a write). Those of writes interrupted or failed are left to the collector: a write of theirs
     * may still be queued on a socket.
     */
    release: () => {
      for (const a of spares.splice(0)) deps.arenas.give(a)
      if (arena !== undefined && inflight.every((w) => w.arena !== arena)) deps.arenas.give(arena)
      arena = undefined
    }
  }
}
