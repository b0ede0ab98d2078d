// The process lock: one holder at a time, a stale lock taken over by exactly one of the runs racing for it.
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as ProcessLock from "../../src/services/ProcessLock.js"
import * as Database from "../../src/services/ProjectDatabase.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("lock")
const RACER = fileURLToPath(new URL("../support/lockRacer.ts", import.meta.url))

/** The id of a process that has exited. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!

/** Racer processes, each answering one line per line it is sent; stopped when the scope closes. */
const startRacers = async (n: number) => {
  const all = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, ["--import", "tsx", RACER], { stdio: ["pipe", "pipe", "inherit"] })
    const lines: Array<string> = []
    const waiting: Array<(line: string) => void> = []
    let buffer = ""
    child.stdout!.on("data", (d) => {
      buffer += d
      for (let i = buffer.indexOf("\n"); i !== -1; i = buffer.indexOf("\n")) {
        const line = buffer.slice(0, i)
        buffer = buffer.slice(i + 1)
        const w = waiting.shift()
        if (w) w(line)
        else lines.push(line)
      }
    })
    const next = () =>
      new Promise<string>((resolve) => (lines.length > 0 ? resolve(lines.shift()!) : waiting.push(resolve)))
    const say = (line: string) => {
      child.stdin!.write(`${line}\n`)
      return next()
    }
    return { child, next, say }
  })
  await Promise.all(all.map((r) => r.next()))
  const stop = () =>
    Promise.all(
      all.map(
        (r) =>
          new Promise<void>((resolve) => {
            r.child.once("exit", () => resolve())
            r.child.stdin!.end()
          })
      )
    )
  return { all, stop }
}
const racers = (n: number) =>
  Effect.acquireRelease(
    Effect.promise(() => startRacers(n)),
    (r) => Effect.promise(r.stop)
  )

describe("ProcessLock", () => {
  it.scopedLive(
    "of several runs racing for one stale lock, exactly one takes it; the others are told who holds it",
    () =>
      Effect.gen(function* () {
        const dir = tempDir("race")
        const { all } = yield* racers(4)
        for (let round = 0; round < 12; round++) {
          const lock = join(dir, `round-${round}.lock`)
          // Alternately a lock in the current format and an older one holding only a process id.
          const dead = deadPid()
          writeFileSync(
            lock,
            round % 2 === 0
              ? JSON.stringify({ pid: dead, host: hostname(), started: 1, token: "gone", what: "old run" })
              : String(dead)
          )
          const answers = yield* Effect.promise(() => Promise.all(all.map((r) => r.say(`go ${lock}`))))
          expect(answers.filter((a) => a === "taken").length, answers.join(" | ")).toBe(1)
          for (const a of answers.filter((x) => x !== "taken")) expect(a).toContain(lock)
          const winner = all[answers.indexOf("taken")]!.child.pid
          expect(JSON.parse(readFileSync(lock, "utf8")).pid).toBe(winner)
          yield* Effect.promise(() => Promise.all(all.map((r) => r.say("release"))))
          expect(existsSync(lock)).toBe(false)
        }
      }),
    120_000
  )

  it.live("takes over a lock whose process id now belongs to a process that started after it was written (reuse)", () =>
    Effect.gen(function* () {
      const dir = tempDir("reuse")
      const lock = join(dir, "x.lock")
      // This very process is alive, but it started long after 2001: the lock cannot be its.
      writeFileSync(lock, String(process.pid))
      utimesSync(lock, new Date("2001-01-01"), new Date("2001-01-01"))
      const owner = yield* Effect.scoped(ProcessLock.acquire(lock, "test"))
      expect(owner.pid).toBe(process.pid)
      const recorded = JSON.stringify({
        pid: process.pid,
        host: hostname(),
        started: Date.parse("2001-01-01"),
        token: "t",
        what: "x"
      })
      writeFileSync(lock, recorded)
      yield* Effect.scoped(ProcessLock.acquire(lock, "test"))
    })
  )

  it.live(
    "a temp file left by a run killed while taking the lock goes with the next taking; a live taker's stays",
    () =>
      Effect.gen(function* () {
        const dir = tempDir("tidy")
        const lock = join(dir, "x.lock")
        const owner = (pid: number, token: string) =>
          JSON.stringify({ pid, host: hostname(), started: null, token, what: "x" })
        // Written this instant: only who wrote them tells them apart.
        writeFileSync(`${lock}.dead0000.tmp`, owner(deadPid(), "dead0000"))
        writeFileSync(`${lock}.live0000.tmp`, owner(process.pid, "live0000"))
        yield* Effect.scoped(ProcessLock.acquire(lock, "test"))
        expect(existsSync(`${lock}.dead0000.tmp`)).toBe(false)
        expect(existsSync(`${lock}.live0000.tmp`)).toBe(true)
      })
  )

  it.live(
    "a temp file left empty by a run killed before writing it goes with the next taking, by the process its name carries",
    () =>
      Effect.gen(function* () {
        const dir = tempDir("tidy-empty")
        const lock = join(dir, "x.lock")
        const host = hostname().replace(/[^A-Za-z0-9.-]/g, "_")
        const dead = `${lock}.${host}.${deadPid()}-dead0000.tmp`
        const live = `${lock}.${host}.${process.pid}-live0000.tmp`
        // A process of that id may run there: another host's file is not judged by this one's processes.
        const elsewhere = `${lock}.other-host.example.${deadPid()}-e1se0000.tmp`
        for (const f of [dead, live, elsewhere]) writeFileSync(f, "")
        yield* Effect.scoped(ProcessLock.acquire(lock, "test"))
        expect(existsSync(dead)).toBe(false)
        // Nothing else goes: the lock itself went with the scope.
        expect(readdirSync(dir).sort()).toEqual([elsewhere, live].map((f) => f.slice(dir.length + 1)).sort())
      })
  )

  it.live("refuses a lock held by a live process, naming the file and the holder, and leaves it alone", () =>
    Effect.gen(function* () {
      const dir = tempDir("held")
      const lock = join(dir, "x.lock")
      const result = yield* Effect.scoped(
        Effect.zipRight(
          ProcessLock.acquire(lock, "first run"),
          Effect.either(Effect.scoped(ProcessLock.acquire(lock, "second run")))
        )
      )
      expect(Either.isLeft(result) && result.left.message).toMatch(
        new RegExp(`another sync is in progress \\(lock ${lock}, held by process ${process.pid} on .* \\(first run\\)`)
      )
      expect(existsSync(lock)).toBe(false)
    })
  )

  it.live(
    "the embedded database opens past a lock left by a process id that was reused",
    () =>
      Effect.gen(function* () {
        const root = tempDir("pgdata")
        const dataDir = Database.embeddedDataDir(root)
        const lock = `${dataDir}.lock`
        mkdirSync(join(root, ".agentsync"), { recursive: true })
        writeFileSync(lock, String(process.pid))
        utimesSync(lock, new Date("2001-01-01"), new Date("2001-01-01"))
        const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ one: number }>`SELECT 1 AS one`).pipe(
          Effect.provide(Database.layer({ url: Option.none(), dataDir })),
          Effect.scoped
        )
        expect(rows).toEqual([{ one: 1 }])
        expect(existsSync(lock)).toBe(false)
      }),
    120_000
  )
})
