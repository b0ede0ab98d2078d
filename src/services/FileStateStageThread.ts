/** The staged writer's thread: a pull's verified small files created by a worker thread in batches, so the disk's calls (most of a large pull's system time) run beside the archive's reading and hashing. */

import { Worker } from "node:worker_threads"
import { Data, Effect, type Scope } from "effect"

/** A file of the writer thread's that could not be written: its path in the staging folder, and what the disk said. */
export class StagedWriteFailed extends Data.TaggedError("StagedWriteFailed")<{
  /** The file's path as its entry names it (relative to the staging folder). */
  readonly path: string
  readonly cause: unknown
}> {}

// A batch: up to this many files, or this many bytes (a file up to the staged writer's SMALL fits in an empty one).
const BATCH_FILES = 512
const BATCH_BYTES = 1024 * 1024
// Batches posted and not yet written before the reading waits (`room`): about 4,000 files, at most 8 MiB held.
const IN_FLIGHT = 8
// Written batches' buffers kept for the next ones (each handed back by the thread): one per batch in flight and
// the one being filled. A fresh buffer's pages are first touched by the copy into it, which cost more than the
// copy itself (a tenth of a 10,000-file pull's main-thread CPU).
const SPARE = IN_FLIGHT + 1

/**
 * The thread's code, plain JavaScript run with `eval` (the bundle has no file of its own for a worker): per file, its
 * folder made once, then one `open` (`wx`: never over anything), `write` and `close` — or a `symlink` when its mode is
 * 0 — its bytes a view of the batch's one buffer. The first failure stops the thread's writing: it is answered with
 * the file's path and error, and every later batch is answered without being written (the pull fails on it).
 */
const SOURCE = `
const { parentPort } = require("node:worker_threads")
const fs = require("node:fs")
const made = new Set()
let failed = false
// Every answer hands the batch's buffer back (transferred), for the next batch to fill.
const answer = (m, more) => parentPort.postMessage({ id: m.id, bytes: m.bytes.buffer, ...more }, [m.bytes.buffer])
parentPort.on("message", (m) => {
  if (failed) return answer(m)
  const paths = m.paths.split("\\0")
  let at = 0
  for (let i = 0; i < paths.length; i++) {
    const full = m.root + "/" + paths[i]
    const mode = m.files[2 * i]
    const end = m.files[2 * i + 1]
    const body = m.bytes.subarray(at, end)
    at = end
    try {
      const dir = full.slice(0, full.lastIndexOf("/"))
      if (!made.has(dir)) {
        fs.mkdirSync(dir, { recursive: true })
        made.add(dir)
      }
      if (mode === 0) {
        fs.symlinkSync(Buffer.from(body.buffer, body.byteOffset, body.length).toString(), full)
        continue
      }
      const fd = fs.openSync(full, "wx", mode)
      try {
        for (let w = 0; w < body.length; ) w += fs.writeSync(fd, body, w, body.length - w)
      } catch (e) {
        try { fs.closeSync(fd) } catch {}
        fs.rmSync(full, { force: true })
        throw e
      }
      try {
        fs.closeSync(fd)
      } catch (e) {
        fs.rmSync(full, { force: true })
        throw e
      }
    } catch (e) {
      failed = true
      return answer(m, { path: paths[i], code: e && e.code, message: String(e && e.message) })
    }
  }
  answer(m)
})
`

/** A thread started before any writer wants it (see `warmWriterThread`), until a writer takes it. */
interface Warm {
  readonly worker: Worker
  online: boolean
  /** It failed or ended before a writer took it: never taken. */
  gone: boolean
  /** Settled once it is online, and once it has exited (tests: `warmThreadEvents`). */
  readonly onlineAt: Promise<void>
  readonly exited: Promise<number>
}
let parked: Warm | undefined
/** Warm threads started so far (tests: a small pull starts none). */
let started = 0

/** Whether a warm thread is parked, taken by no writer yet (tests: the scope's end leaves none). */
export const warmThreadParked = (): boolean => parked !== undefined

/** How many warm threads were started in this process (tests). */
export const warmThreadsStarted = (): number => started

/** The parked thread's online and exit, for tests that wait for them rather than for a time; none when none parked. */
export const warmThreadEvents = (): { readonly online: Promise<void>; readonly exited: Promise<number> } | undefined =>
  parked === undefined ? undefined : { online: parked.onlineAt, exited: parked.exited }

/** The parked thread, for a writer starting its own: taken once, and only while it can still run. */
const takeWarm = (): Warm | undefined => {
  const w = parked
  parked = undefined
  return w?.gone === false ? w : undefined
}

/**
 * Starts a writer thread now, for the writer a pull that will stage many files is about to make: Node's bootstrap of
 * the thread (about 0.15 s of CPU) then runs while the pull plans and its download's answer is on its way, on the
 * other core, rather than in the middle of the download, and the writer sends it every file from the first (see
 * `makeStageWriter`). The next writer that starts a thread takes it; when the scope closes and none has, it is ended.
 * One at a time: while one is parked, this starts none. A thread that cannot be made leaves nothing parked (a writer
 * then starts its own, or writes alone, as without this).
 */
export const warmWriterThread: Effect.Effect<void, never, Scope.Scope> = Effect.asVoid(
  Effect.acquireRelease(
    Effect.sync((): Warm | undefined => {
      if (parked !== undefined) return undefined
      let worker: Worker
      try {
        worker = new Worker(SOURCE, { eval: true })
      } catch {
        // The writer meets the same refusal when it starts its own, and writes alone then.
        return undefined
      }
      started++
      const warm: Warm = {
        worker,
        online: false,
        gone: false,
        onlineAt: new Promise((r) => worker.once("online", () => r())),
        exited: new Promise((r) => worker.once("exit", r))
      }
      worker.on("online", () => {
        warm.online = true
      })
      // Until taken, an error or an exit only marks it gone (its taker listens for its own from then on).
      worker.on("error", () => {
        warm.gone = true
      })
      worker.on("exit", () => {
        warm.gone = true
      })
      parked = warm
      return warm
    }),
    (warm) =>
      warm === undefined || parked !== warm
        ? Effect.void
        : Effect.promise(() => {
            parked = undefined
            return warm.worker.terminate()
          })
  )
)

/** The thread's answer to a batch: written, or the first file that could not be. */
interface Answer {
  readonly id: number
  /** The batch's buffer, handed back once the thread is done with it. */
  readonly bytes?: ArrayBuffer
  readonly path?: string
  readonly code?: string
  readonly message?: string
}

export interface WriterThread {
  /**
   * Queues a verified file (`mode` 0: a symbolic link whose target is its bytes; its path has no NUL, as no checked
   * path has), copied into the current batch; a full batch is posted. The first call starts the thread, and until it
   * is online each file is written at once by `here`, as the files before it were (the reading never waits for the
   * thread to start). Throws the thread's first failure, or what `here` throws: the reading stops on it.
   */
  readonly put: (path: string, mode: number, chunks: ReadonlyArray<Uint8Array>) => void
  /** Whether a thread is started for this writer or parked warm for it (`warmWriterThread`): files may go to it now. */
  readonly warm: () => boolean
  /** Waits while too many batches are in flight (the reading keeps pace with the disk; memory stays bounded). */
  readonly room: Effect.Effect<void>
  /**
   * Posts what is queued and waits until every file put is on disk; fails with the thread's first failure. Once all is
   * written, the thread is let go: it ends while the caller goes on (a pull's swap), and `close` awaits its end; a
   * later `put` starts another.
   */
  readonly drain: Effect.Effect<void, StagedWriteFailed>
  /**
   * Waits until the thread, once started, is online or known not to start (files put after it go to the thread).
   * Only tests wait on it: a pull never waits for the thread.
   */
  readonly ready: Effect.Effect<void>
  /**
   * How many batch buffers this writer has made: at most one per batch in flight and one more, however many files.
   * Read only by tests (the bound on memory).
   */
  readonly buffersMade: () => number
  /**
   * Posts what is queued, waits for every batch, then ends the thread (a later `put` starts another) and awaits the
   * exit of every thread `drain` let go: no descriptor of the thread's stays open. Never fails: a failure stays for
   * `drain`. Safe to run again.
   */
  readonly close: Effect.Effect<void>
}

/**
 * A batch of files as posted to the thread: their paths in one string (NUL-separated: a checked path has none), and
 * per file its mode and where its bytes end in `bytes` (`files`, two numbers a file): one string and two typed
 * arrays to clone or transfer, rather than three arrays of values.
 */
interface Batch {
  readonly id: number
  readonly root: string
  readonly paths: string
  readonly files: Uint32Array<ArrayBuffer>
  readonly bytes: Uint8Array<ArrayBuffer>
}

/**
 * A writer thread for the staging folder `root`, started by its first file; the files put before it is online are
 * written by `here`, so batches are made only once it is. Should a thread that was online end (never expected: its
 * code catches what the disk throws) with nothing in its hands, the next batch starts another and is held until that
 * one is online. A thread that cannot start (its constructor throws, or it fails before it is online: a limit on
 * threads, a permission model without workers) leaves every file to `here`, which writes one on this thread as the
 * staged writer does with its first files (and throws what the disk throws); so do the batches held for it.
 */
export const writerThread = (
  root: string,
  here: (path: string, mode: number, chunks: ReadonlyArray<Uint8Array>) => void
): WriterThread => {
  let worker: Worker | undefined
  let online = false
  /** No thread could be started: every file is written by `here`. */
  let alone = false
  let held: Array<Batch> = []
  let failure: StagedWriteFailed | undefined
  let nextId = 0
  const inFlight = new Map<number, string>()
  let waiters: Array<() => void> = []
  const wake = () => {
    const now = waiters
    waiters = []
    for (const w of now) w()
  }
  /** Buffers of written batches, for the next ones to fill. */
  const spare: Array<ArrayBuffer> = []
  let made = 0
  /** A written batch's buffer, kept for a later batch (only ever one this writer made, which nothing else holds). */
  const giveBack = (b: ArrayBuffer | undefined) => {
    if (b !== undefined && b.byteLength === BATCH_BYTES && spare.length < SPARE) spare.push(b)
  }
  const settle = (answer: Answer) => {
    const first = inFlight.get(answer.id)
    inFlight.delete(answer.id)
    giveBack(answer.bytes)
    if (answer.path !== undefined && failure === undefined) {
      const cause = Object.assign(new Error(answer.message ?? "write failed"), { code: answer.code })
      failure = new StagedWriteFailed({ path: answer.path ?? first ?? "", cause })
    }
    wake()
  }
  /** Writes a batch on this thread; the first file that fails is the writer's failure (nothing after it written). */
  const writeHere = (batch: Batch) => {
    let at = 0
    const paths = batch.paths.split("\0")
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i] ?? ""
      const end = batch.files[2 * i + 1] ?? at
      if (failure !== undefined) break
      try {
        here(path, batch.files[2 * i] ?? 0, [batch.bytes.subarray(at, end)])
      } catch (cause) {
        failure = new StagedWriteFailed({ path, cause })
      }
      at = end
    }
    // `here` is synchronous and keeps nothing of its chunks once it returns.
    giveBack(batch.bytes.buffer)
  }
  /** No thread after all: the held batches (never sent, so not written) are written here, and every later file. */
  const goAlone = () => {
    alone = true
    worker = undefined
    const batches = held
    held = []
    for (const b of batches) {
      inFlight.delete(b.id)
      writeHere(b)
    }
    wake()
  }
  // The bytes move to the thread (transferred, not copied: this thread cannot touch them until they are handed back).
  const send = (w: Worker, batch: Batch) => w.postMessage(batch, [batch.bytes.buffer])
  /** Listens to a thread this writer now has (made here, or taken warm). */
  const listen = (made: Worker) => {
    made.on("online", () => {
      if (worker !== made) return
      online = true
      const batches = held
      held = []
      for (const b of batches) send(made, b)
      wake()
    })
    made.on("message", (answer: Answer) => settle(answer))
    made.on("error", (e) => {
      if (worker !== made) return
      if (!online) return goAlone()
      // The thread itself failed once running (never expected: its code catches what the disk throws): every batch
      // in flight is taken as not written.
      const [first] = inFlight.values()
      if (failure === undefined) failure = new StagedWriteFailed({ path: first ?? "", cause: e })
      inFlight.clear()
      worker = undefined
      wake()
    })
    // Ended without an error (not by `close`, which lets go of it first): before it was online, as if it never
    // started; after, the batches in its hands are taken as not written.
    made.on("exit", (code) => {
      if (worker !== made) return
      if (!online) return goAlone()
      worker = undefined
      const [first] = inFlight.values()
      if (inFlight.size > 0 && failure === undefined)
        failure = new StagedWriteFailed({ path: first ?? "", cause: new Error(`the writer thread exited (${code})`) })
      inFlight.clear()
      wake()
    })
  }

  /**
   * Starts a thread when none runs, or takes the warm one (online already, or its 'online' still to come); a
   * constructor that throws leaves every file to `here`.
   */
  const ensureStarted = () => {
    if (alone || worker !== undefined) return
    const warm = takeWarm()
    try {
      const made = warm?.worker ?? new Worker(SOURCE, { eval: true })
      worker = made
      online = warm?.online === true
      listen(made)
    } catch {
      alone = true
    }
  }

  let buffer = new Uint8Array(0)
  let used = 0
  let paths: Array<string> = []
  /** Mode and end of each file queued, two numbers a file. */
  let files = new Uint32Array(2 * BATCH_FILES)
  const post = () => {
    if (paths.length === 0) return
    // The batch's buffer goes with it (see `send`); the next batch takes a spare one, or a new one.
    const batch: Batch = {
      id: nextId++,
      root,
      paths: paths.join("\0"),
      files: files.subarray(0, 2 * paths.length),
      bytes: buffer.subarray(0, used)
    }
    buffer = new Uint8Array(0)
    used = 0
    paths = []
    files = new Uint32Array(2 * BATCH_FILES)
    // A writer that has failed writes nothing more (`drain` fails with that failure; the staging folder goes).
    if (failure !== undefined) return giveBack(batch.bytes.buffer)
    ensureStarted()
    if (alone || worker === undefined) return writeHere(batch)
    inFlight.set(batch.id, batch.paths[0] ?? "")
    if (online) send(worker, batch)
    else held.push(batch)
  }
  /** Resolves once `ready()` holds (checked again on every answer). */
  const until = (ready: () => boolean) =>
    Effect.async<void>((resume) => {
      const check = () => {
        if (ready()) resume(Effect.void)
        else waiters.push(check)
      }
      check()
    })
  const settled = Effect.suspend(() => {
    post()
    return until(() => inFlight.size === 0)
  })
  /** Threads let go and not yet ended (see `letGo`), awaited by `close`. */
  const ending: Array<Promise<number>> = []
  /**
   * Ends the thread, nothing in its hands, without waiting for it: its exit (tens of milliseconds, on its own thread)
   * runs beside what the caller does next. Its events are no longer this writer's (`worker` is not it).
   */
  const letGo = () => {
    const w = worker
    worker = undefined
    online = false
    if (w !== undefined) ending.push(w.terminate())
  }
  return {
    put: (path, mode, chunks) => {
      if (failure !== undefined) throw failure
      ensureStarted()
      if (alone || !online) return here(path, mode, chunks)
      let size = 0
      for (const c of chunks) size += c.length
      if (paths.length >= BATCH_FILES || used + size > buffer.length) {
        if (paths.length > 0 && (paths.length >= BATCH_FILES || used + size > BATCH_BYTES)) post()
        if (used + size > buffer.length) {
          // Its own buffer (never Node's shared pool): transferred whole to the thread, and handed back. Only a file
          // larger than a batch (never one of the staged writer's) needs a larger one, which is not kept.
          const need = Math.max(BATCH_BYTES, used + size)
          const taken = need === BATCH_BYTES ? spare.pop() : undefined
          if (taken === undefined) made++
          const grown = new Uint8Array(taken ?? new ArrayBuffer(need))
          grown.set(buffer.subarray(0, used))
          buffer = grown
        }
      }
      for (const c of chunks) {
        buffer.set(c, used)
        used += c.length
      }
      files[2 * paths.length] = mode
      files[2 * paths.length + 1] = used
      paths.push(path)
    },
    warm: () => worker !== undefined || (parked !== undefined && !parked.gone),
    ready: Effect.suspend(() => until(() => online || alone || worker === undefined)),
    buffersMade: () => made,
    room: Effect.suspend(() => (inFlight.size < IN_FLIGHT ? Effect.void : until(() => inFlight.size < IN_FLIGHT))),
    drain: Effect.zipRight(
      settled,
      Effect.suspend(() => {
        if (failure !== undefined) return Effect.fail(failure)
        letGo()
        return Effect.void
      })
    ),
    close: Effect.zipRight(
      settled,
      Effect.promise(async () => {
        letGo()
        const all = ending.splice(0)
        await Promise.all(all)
      })
    )
  }
}
