// A pull into an empty tree sends the archive's GET before its plan: the GET reaches the server while the head's
// manifest is still unanswered, is read when the plan wants the whole tree of the revision it names, and is torn down
// (its socket closed, the warm writer thread ended, nothing written) when the run fails, is interrupted, or the head
// moved in between.
import * as fs from "node:fs"
import { createServer, type IncomingMessage, request, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { warmThreadParked, warmThreadsStarted } from "../../src/services/FileStateStageThread.js"
import { serverForFile } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const server = serverForFile("pullahead")

const tempDir = tempDirs("pull-ahead")

const project = (files: Record<string, string> = {}) => {
  const root = tempDir("project")
  fs.writeFileSync(nodePath.join(root, "agentsync.yaml"), "services: services\n")
  fs.mkdirSync(nodePath.join(root, "services"))
  for (const [p, text] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    fs.mkdirSync(nodePath.dirname(full), { recursive: true })
    fs.writeFileSync(full, text)
  }
  return root
}
const services = (root: string) => treeFiles(nodePath.join(root, "services"), "utf8")
/** Everything under the project's `.agentsync/`, by relative path (staging folders, journal, base, ...). */
const stateOf = (root: string) => {
  const dir = nodePath.join(root, ".agentsync")
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : []
}

interface Seen {
  readonly what: string
  /** Whether no manifest had been answered yet when this request came. */
  readonly beforeManifest: boolean
  closed: boolean
}

/**
 * A proxy in front of the server that can hold the manifest's answer (`hold`: until `release`, or `holdMs` at most,
 * so that a client that waits for it before anything else is held that long and then goes on), or refuse it with a
 * status. It records every request, and when the client's connection of each closed.
 */
const gate = async (target: string) => {
  let held: Array<() => void> = []
  let hold = false
  let refuse: number | undefined
  let refuseDownload: { readonly status: number; readonly revision: string } | undefined
  let openDownload: { readonly revision: string; readonly then: "hold" | "cut" } | undefined
  let manifests = 0
  const seen: Array<Seen> = []
  const release = () => {
    hold = false
    const now = held
    held = []
    for (const go of now) go()
  }
  const proxy: Server = createServer((req: IncomingMessage, res) => {
    const entry: Seen = { what: `${req.method} ${req.url}`, beforeManifest: manifests === 0, closed: false }
    seen.push(entry)
    req.socket.on("close", () => {
      entry.closed = true
    })
    const forward = () => {
      // No keep-alive: nothing of the proxy stays open on the server once a test is done.
      const upstream = request(
        new URL(req.url!, target),
        { method: req.method, headers: req.headers, agent: false },
        (up) => {
          if (req.url!.includes("/files/manifest")) up.on("end", () => manifests++)
          res.writeHead(up.statusCode!, up.headers)
          up.pipe(res)
        }
      )
      upstream.on("error", () => res.destroy())
      // A client gone before its request was let through (a held manifest): the server's answer is not waited for.
      if (res.destroyed) return void upstream.destroy()
      res.on("close", () => upstream.destroy())
      req.pipe(upstream)
    }
    if (refuseDownload !== undefined && req.method === "GET" && req.url!.endsWith("/files")) {
      // Naming the head, as the server's archive does: only the status says this answer is not one.
      res.writeHead(refuseDownload.status, {
        "content-type": "application/json",
        "x-agentsync-revision": refuseDownload.revision
      })
      refuseDownload = undefined
      return void res.end(JSON.stringify({ _tag: "Unavailable", reason: "refused by the test" }))
    }
    if (openDownload !== undefined && req.method === "GET" && req.url!.endsWith("/files")) {
      // A 200 of the head and the first bytes of a gzip member, then nothing more (held), or the connection ended
      // without the answer's end (cut): its head is delivered whole either way.
      const { revision, then } = openDownload
      openDownload = undefined
      res.writeHead(200, { "content-type": "application/gzip", "x-agentsync-revision": revision })
      return void res.write(Buffer.from([0x1f, 0x8b]), () => {
        if (then === "cut") res.socket?.end()
      })
    }
    if (req.url!.includes("/files/manifest")) {
      if (refuse !== undefined) {
        res.writeHead(refuse, { "content-type": "application/json" })
        return void res.end(JSON.stringify({ _tag: "Unauthorized", reason: "refused by the test" }))
      }
      if (hold) {
        held.push(forward)
        return
      }
    }
    forward()
  })
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r))
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    seen,
    downloads: () => seen.filter((s) => s.what.startsWith("GET") && !s.what.includes("/manifest")),
    hold: () => {
      hold = true
    },
    release,
    refuse: (status: number | undefined) => {
      refuse = status
    },
    /** The next GET of the head's whole tree is answered with `status`, naming `revision` as an archive would. */
    refuseDownloadOnce: (status: number, revision: string) => {
      refuseDownload = { status, revision }
    },
    /** The next GET of the head's whole tree is answered 200 naming `revision`, its body begun and never ended. */
    openDownloadOnce: (revision: string, then: "hold" | "cut") => {
      openDownload = { revision, then }
    },
    close: () =>
      new Promise((r) => {
        // An answer held open by the test would hold the proxy's close.
        proxy.closeAllConnections()
        proxy.close(r)
      })
  }
}

/** Polls `ok` until it holds (a socket's close reaches the proxy a moment after the client's). */
const eventually = (ok: () => boolean) =>
  Effect.promise(async () => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10))
    return ok()
  })

const tree = { "agents/a/config.yaml": "id: a\n", "skills/s/SKILL.md": "# s\n", "config/app.yaml": "x: 1\n" }

/**
 * A tenant holding `tree` (pushed from `source`, straight to the server), the gate in front of the server for the
 * scope, and an empty project to pull into through the gate.
 */
const setup = (name: string) =>
  Effect.gen(function* () {
    const t = yield* Effect.promise(() => server.createTenant(name))
    const token = t.token
    const source = project(tree)
    const pushed = yield* fileSync(server.url, source, token).push()
    const head = pushed.revision!
    const g = yield* Effect.promise(() => gate(server.url))
    yield* Effect.addFinalizer(() => Effect.zipRight(Effect.sync(g.release), Effect.promise(g.close)))
    const into = project()
    return { g, head, source, into, direct: fileSync(server.url, source, token), gated: fileSync(g.url, into, token) }
  })

/** The manifest refused 401: the pull fails as Unauthorized, and the GET it sent ahead is closed. */
const refusedWithTheGetAheadClosed = ({ g, gated }: Effect.Effect.Success<ReturnType<typeof setup>>) =>
  Effect.gen(function* () {
    g.refuse(401)
    const failed = yield* Effect.either(gated.pull())
    expect(Either.isLeft(failed) && failed.left._tag).toBe("Unauthorized")
    const [early] = g.downloads()
    expect(early?.what).toMatch(/^GET .*\/files$/)
    expect(yield* eventually(() => early?.closed === true)).toBe(true)
  })

describe("a pull into an empty tree", () => {
  it.live("sends the archive's GET while the head's manifest is unanswered, and reads it for the whole tree", () =>
    Effect.gen(function* () {
      const { g, into, gated } = yield* setup("ahead-used")
      g.hold()
      const pulling = yield* Effect.fork(gated.pull())
      // A client that asks for nothing before its manifest is answered is held 3 s, then let go: the GET came late.
      yield* eventually(() => g.downloads().length > 0).pipe(Effect.timeout("3 seconds"), Effect.either)
      const early = g.downloads()[0]
      g.release()
      const report = yield* Fiber.join(pulling)
      expect(early?.beforeManifest).toBe(true)
      // One GET: the one sent ahead was read, not asked again.
      expect(g.downloads()).toHaveLength(1)
      expect(report.actions).toEqual({ write: 3 })
      expect(services(into)).toEqual(tree)
      expect(warmThreadParked()).toBe(false)
    }).pipe(Effect.scoped)
  )

  it.live("closes the GET sent ahead when the run fails before it is read: nothing written, no thread left", () =>
    Effect.gen(function* () {
      const run = yield* setup("ahead-failed")
      const { into } = run
      yield* refusedWithTheGetAheadClosed(run)
      expect(services(into)).toEqual({})
      expect(stateOf(into).filter((p) => p.startsWith("staging-") || p.includes("journal"))).toEqual([])
      expect(warmThreadParked()).toBe(false)
    }).pipe(Effect.scoped)
  )

  it.live("destroys the GET sent ahead when the run fails while its answer is still coming: no thread started", () =>
    Effect.gen(function* () {
      const run = yield* setup("ahead-open")
      const { g, head, into } = run
      const threads = warmThreadsStarted()
      // Its body never ends: only the run's scope can close it.
      g.openDownloadOnce(head, "hold")
      yield* refusedWithTheGetAheadClosed(run)
      expect(services(into)).toEqual({})
      expect(warmThreadsStarted()).toBe(threads)
    }).pipe(Effect.scoped)
  )

  it.live("asks again when the answer sent ahead broke off after its head: read once, never again", () =>
    Effect.gen(function* () {
      const { g, head, into, gated } = yield* setup("ahead-cut")
      g.openDownloadOnce(head, "cut")
      const report = yield* gated.pull()
      expect(report.actions).toEqual({ write: 3 })
      expect(services(into)).toEqual(tree)
      const [early, asked, ...more] = g.downloads()
      expect(early?.what).toMatch(/\/files$/)
      expect(asked?.what).toMatch(/\/files\?revision=/)
      expect(more).toEqual([])
    }).pipe(Effect.scoped)
  )

  it.live("a small pull into an empty tree starts no writer thread", () =>
    Effect.gen(function* () {
      const { into, gated } = yield* setup("ahead-small")
      const threads = warmThreadsStarted()
      yield* gated.pull()
      expect(services(into)).toEqual(tree)
      expect(warmThreadsStarted()).toBe(threads)
    }).pipe(Effect.scoped)
  )

  it.live(
    "interrupted while the GET sent ahead is in flight: the tree and its state as they were, then pulled whole",
    () =>
      Effect.gen(function* () {
        const { g, into, gated } = yield* setup("ahead-interrupted")
        g.hold()
        const pulling = yield* Effect.fork(gated.pull())
        expect(yield* eventually(() => g.downloads().length > 0)).toBe(true)
        yield* Fiber.interrupt(pulling)
        const [early] = g.downloads()
        expect(yield* eventually(() => early?.closed === true)).toBe(true)
        expect(services(into)).toEqual({})
        // No staging folder, journal, base, kept head or mark: what a pull leaves only once it has pulled. (A state file
        // being written when the run was interrupted lands or goes a moment later: waited for.)
        expect(yield* eventually(() => !stateOf(into).some((p) => p.startsWith(".agentsync-tmp-")))).toBe(true)
        expect(
          stateOf(into).filter((p) => /^(staging-|pull-journal|files-base|remote-manifest|files-settled)/.test(p))
        ).toEqual([])
        expect(warmThreadParked()).toBe(false)
        g.release()
        yield* gated.pull()
        expect(services(into)).toEqual(tree)
      }).pipe(Effect.scoped)
  )

  it.live("asks again when the GET sent ahead was answered with a failure: the failure is not the run's", () =>
    Effect.gen(function* () {
      const { g, head, into, gated } = yield* setup("ahead-refused")
      g.refuseDownloadOnce(500, head)
      yield* gated.pull()
      expect(services(into)).toEqual(tree)
      const [early, asked] = g.downloads()
      expect(early?.what).toMatch(/\/files$/)
      expect(asked?.what).toMatch(/\/files\?revision=/)
    }).pipe(Effect.scoped)
  )

  it.live("asks again when the head moved after the GET went ahead: the tree is the new head's", () =>
    Effect.gen(function* () {
      const { g, into, gated, source, direct } = yield* setup("ahead-moved")
      g.hold()
      const pulling = yield* Effect.fork(gated.pull())
      expect(yield* eventually(() => g.downloads().length > 0)).toBe(true)
      // The GET sent ahead is of the old head; the manifest the run then reads is of the new one.
      fs.writeFileSync(nodePath.join(source, "services/config/app.yaml"), "x: 2\n")
      fs.writeFileSync(nodePath.join(source, "services/config/new.yaml"), "new\n")
      yield* direct.push()
      g.release()
      yield* Fiber.join(pulling)
      expect(services(into)).toEqual(services(source))
      const [early, asked] = g.downloads()
      expect(early?.closed).toBe(true)
      expect(asked?.what).toMatch(/\/files\?revision=/)
    }).pipe(Effect.scoped)
  )
})
