// File sync between clients through the real server when the shape of the tree changes, when the network cuts
// answers short, when content compresses very well, and after a run was killed.
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { createServer, type IncomingMessage, request, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as nodePath from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, type Redacted } from "effect"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import { IoError } from "../../src/errors.js"
import { FileSyncService, type FilesOptions, layer as fileSyncLayer } from "../../src/programs/files.js"
import { FileState, make as liveState } from "../../src/services/FileState.js"
import { layer as clientLayer } from "../../src/services/SyncApi.js"
import { run, serverForFile } from "../server/support.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const server = serverForFile("filessafe")
let cutter: Awaited<ReturnType<typeof proxy>>
beforeAll(async () => {
  cutter = await proxy(server.url)
})
afterAll(async () => {
  await new Promise((r) => cutter?.server.close(r))
})

const tempDir = tempDirs("files-safety")

const project = (files: Record<string, string | Buffer> = {}) => {
  const root = tempDir("project")
  fs.writeFileSync(nodePath.join(root, "agentsync.yaml"), "services: services\n")
  fs.mkdirSync(nodePath.join(root, "services"))
  write(root, files)
  return root
}
const write = (root: string, files: Record<string, string | Buffer>) => {
  for (const [p, bytes] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    fs.mkdirSync(nodePath.dirname(full), { recursive: true })
    fs.writeFileSync(full, bytes)
  }
}
const services = (root: string) => treeFiles(nodePath.join(root, "services"), "base64")

const sync = (root: string, token: Redacted.Redacted<string>, origin = server.url) => {
  const config = new SyncConfig({
    projectRoot: root,
    servicesPath: nodePath.join(root, "services"),
    directUrl: origin,
    token
  })
  const layer = fileSyncLayer.pipe(
    Layer.provide(
      clientLayer({
        endpoint: { mode: "direct", origin },
        token,
        retry: { maxRetries: 3, base: "10 millis", factor: 2, cap: "20 millis" }
      })
    ),
    Layer.provide(Layer.succeed(CurrentConfig, config))
  )
  const go = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) =>
    Effect.flatMap(FileSyncService, f).pipe(Effect.provide(layer))
  const either = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) => Effect.either(go(f))
  return {
    push: (o: FilesOptions = {}) => go((s) => s.push(o)),
    pull: (o: FilesOptions = {}) => go((s) => s.pull(o)),
    pushEither: (o: FilesOptions = {}) => either((s) => s.push(o)),
    pullEither: (o: FilesOptions = {}) => either((s) => s.pull(o))
  }
}

/**
 * An HTTP proxy in front of the server that cuts chosen answers short: `half` sends the status and half the
 * body, then drops the connection; `headers` sends only the status and headers; `none` lets the server answer
 * (an upload commits) and drops the connection before a byte of the answer.
 */
const proxy = async (target: string) => {
  const rules: Array<{ match: (req: IncomingMessage) => boolean; cut: "half" | "headers" | "none"; times: number }> = []
  const seen: Array<string> = []
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    const rule = rules.find((r) => r.times > 0 && r.match(req))
    if (rule !== undefined) rule.times--
    const upstream = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (up) => {
      if (rule?.cut === "none") {
        up.resume()
        up.on("end", () => req.socket.destroy())
        return
      }
      res.writeHead(up.statusCode!, up.headers)
      if (rule === undefined) return void up.pipe(res)
      if (rule.cut === "headers") {
        res.flushHeaders()
        up.resume()
        up.on("end", () => res.socket?.destroy())
        return
      }
      const chunks: Array<Buffer> = []
      up.on("data", (d: Buffer) => chunks.push(d))
      up.on("end", () => {
        const body = Buffer.concat(chunks)
        res.write(body.subarray(0, Math.floor(body.length / 2)))
        setTimeout(() => res.socket?.destroy(), 20)
      })
    })
    req.pipe(upstream)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    server,
    url,
    seen,
    cut: (match: (req: IncomingMessage) => boolean, cut: "half" | "headers" | "none", times = 1) =>
      rules.push({ match, cut, times })
  }
}
const manifestRequest = (req: IncomingMessage) => req.url!.includes("/files/manifest")
const uploadRequest = (req: IncomingMessage) => req.method === "POST" && req.url!.endsWith("/files")
const downloadRequest = (req: IncomingMessage) => !req.url!.includes("/manifest") && !uploadRequest(req)

describe("a file that becomes a folder, and back, between two clients", () => {
  it.live("is pulled as a delete plus a create, the replaced file kept in a backup, in both directions", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("shapes"))
      const a = project({
        "web/theme.json": '{"old":true}\n',
        "agents/x/config.yaml": "id: x\n",
        "agents/x/system_prompt.md": "x\n",
        "config/app.yaml": "a\n"
      })
      yield* sync(a, t.token).push()
      const b = project()
      yield* sync(b, t.token).pull()
      expect(services(b)).toEqual(services(a))

      // On A, the file becomes a folder; pushed without --delete, the file's removal goes with the folder's creation.
      fs.rmSync(nodePath.join(a, "services/web/theme.json"))
      write(a, { "web/theme.json/dark.json": "{}\n", "web/theme.json/light.json": "{}\n" })
      const pushed = yield* sync(a, t.token).push()
      expect(pushed.actions).toEqual({ upload: 2, "delete-remote": 1 })
      expect(pushed.files.find((f) => f.path === "web/theme.json")?.note).toMatch(/replaced by the folder/)
      const pulled = yield* sync(b, t.token).pull()
      expect(pulled.actions).toEqual({ write: 2, "delete-local": 1 })
      expect(services(b)).toEqual(services(a))
      expect(fs.readFileSync(nodePath.join(pulled.backup!, "web/theme.json"), "utf8")).toBe('{"old":true}\n')

      // And back: the folder becomes a file again.
      fs.rmSync(nodePath.join(b, "services/web/theme.json"), { recursive: true })
      write(b, { "web/theme.json": '{"new":true}\n' })
      expect((yield* sync(b, t.token).push()).actions).toEqual({ upload: 1, "delete-remote": 2 })
      const back = yield* sync(a, t.token).pull()
      expect(back.actions).toEqual({ write: 1, "delete-local": 2 })
      expect(services(a)).toEqual(services(b))
      // Every later run agrees: nothing to do either way.
      expect((yield* sync(a, t.token).push()).actions).toEqual({})
      expect((yield* sync(b, t.token).pull()).actions).toEqual({})
    })
  )

  it.live("is a conflict, not a loss, when the file being replaced was edited on the side that pulls", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("shapes-conflict"))
      const a = project({ "web/theme.json": "1\n", "config/app.yaml": "x\n" })
      yield* sync(a, t.token).push()
      const b = project()
      yield* sync(b, t.token).pull()
      fs.rmSync(nodePath.join(a, "services/web/theme.json"))
      write(a, { "web/theme.json/x.json": "{}\n" })
      yield* sync(a, t.token).push()
      write(b, { "web/theme.json": "edited on b\n" })
      const refused = yield* sync(b, t.token).pullEither()
      expect(Either.isLeft(refused) && refused.left._tag).toBe("Conflict")
      expect(fs.readFileSync(nodePath.join(b, "services/web/theme.json"), "utf8")).toBe("edited on b\n")
      const forced = yield* sync(b, t.token).pull({ force: true })
      expect(fs.readFileSync(nodePath.join(forced.backup!, "web/theme.json"), "utf8")).toBe("edited on b\n")
      expect(services(b)).toEqual(services(a))
    })
  )
})

describe("backups", () => {
  it.live(
    "a restore puts back the old shape: the folder that replaced a file, and the file that replaced a folder, move into a new backup",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("restore-shapes"))
        const original = {
          "skills/pdf/reference.md": "ref\n",
          "skills/pdf/scripts/a.py": "a\n",
          "skills/pdf/scripts/b.py": "b\n",
          "skills/pdf/SKILL.md": "# pdf\n",
          "config/x.yaml": "x\n"
        }
        const a = project(original)
        yield* sync(a, t.token).push()
        const b = project()
        yield* sync(b, t.token).pull()
        fs.rmSync(nodePath.join(a, "services/skills/pdf/reference.md"))
        fs.rmSync(nodePath.join(a, "services/skills/pdf/scripts"), { recursive: true })
        write(a, { "skills/pdf/reference.md/part1.md": "1\n", "skills/pdf/scripts": "see the repository\n" })
        // Three of five files go (the delete guard asks for --force).
        yield* sync(a, t.token).push({ force: true })
        const pulled = yield* sync(b, t.token).pull({ force: true })
        expect(services(b)).toEqual(services(a))
        const id = nodePath.basename(pulled.backup!)
        const config = new SyncConfig({ projectRoot: b, servicesPath: nodePath.join(b, "services") })
        const { restore, backups } = yield* Effect.promise(() => import("../../src/programs/files.js"))
        const restored = yield* restore(id).pipe(Effect.provideService(CurrentConfig, config))
        expect(restored.restored.length).toBe(3)
        const back = services(b)
        for (const [path, text] of Object.entries(original))
          expect([path, Buffer.from(back[path] ?? "", "base64").toString()]).toEqual([path, text])
        expect(Object.keys(back).sort()).toEqual(Object.keys(original).sort())
        // What the restore replaced is itself a backup, recorded and listed first.
        const list = yield* backups().pipe(Effect.provideService(CurrentConfig, config))
        expect(list.map((l) => [l.id === restored.backup, l.cause, l.files])).toEqual([
          [true, `restore of ${id}`, 2],
          [false, expect.stringMatching(/^pull of revision /), 3]
        ])
      })
  )

  it.live(
    "a backup the disk cannot write refuses the pull before any file changes, and the error names the backup",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("backup-full"))
        const a = project({ "config/a.yaml": "a1\n", "config/b.yaml": "b1\n", "config/gone.yaml": "gone\n" })
        yield* sync(a, t.token).push()
        const b = project()
        yield* sync(b, t.token).pull()
        write(a, { "config/a.yaml": "a2\n", "config/b.yaml": "b2\n" })
        fs.rmSync(nodePath.join(a, "services/config/gone.yaml"))
        yield* sync(a, t.token).push({ delete: true })
        const before = services(b)
        // The local disk, except that the backup fills up after its first file, as a full disk would.
        let full = true
        const fullDisk = {
          at: (root: string) => {
            const state = liveState(root)
            return {
              ...state,
              keep: (j: Parameters<typeof state.keep>[0]) =>
                full
                  ? Effect.zipRight(
                      state.keep({ ...j, write: j.write.slice(0, 1), delete: [] }),
                      Effect.fail(
                        new IoError({
                          path: nodePath.join(j.backup, j.write[1] ?? ""),
                          reason: "cannot keep a copy in the backup: no space left on device",
                          cause: Object.assign(new Error("ENOSPC"), { code: "ENOSPC" })
                        })
                      )
                    )
                  : state.keep(j)
            }
          }
        }
        const refused = yield* sync(b, t.token)
          .pullEither({ delete: true })
          .pipe(Effect.provideService(FileState, fullDisk))
        const error = Either.isLeft(refused) ? refused.left : undefined
        expect(error).toBeInstanceOf(IoError)
        expect(error?.message).toMatch(
          /\.agentsync\/backups\/[^/:]+: cannot keep the files the pull would replace, so it changed nothing/
        )
        expect(error?.message).toMatch(/no space left on device/)
        // Nothing of the tree changed, and nothing is left for a later run to finish or list.
        expect(services(b)).toEqual(before)
        const state = nodePath.join(b, ".agentsync")
        expect(fs.readdirSync(state).filter((n) => n.startsWith("staging-") || n === "pull-journal.json")).toEqual([])
        expect(
          fs.existsSync(nodePath.join(state, "backups")) ? fs.readdirSync(nodePath.join(state, "backups")) : []
        ).toEqual([])
        // Space freed: the same pull goes through, the replaced and deleted files kept in its backup.
        full = false
        const pulled = yield* sync(b, t.token).pull({ delete: true }).pipe(Effect.provideService(FileState, fullDisk))
        expect(pulled.actions).toEqual({ write: 2, "delete-local": 1 })
        expect(services(b)).toEqual(services(a))
        expect(treeFiles(pulled.backup!, "utf8")).toMatchObject({
          "config/a.yaml": "a1\n",
          "config/b.yaml": "b1\n",
          "config/gone.yaml": "gone\n"
        })
      })
  )

  it.live("are pruned beyond the count and the age, never the newest nor one an unfinished pull needs", () =>
    Effect.gen(function* () {
      const root = project()
      const dir = nodePath.join(root, ".agentsync/backups")
      const ids = [
        "2001-01-01T00-00-00-000Z-aaaaaa",
        "2001-01-02T00-00-00-000Z-bbbbbb",
        new Date().toISOString().replace(/[:.]/g, "-").concat("-cccccc")
      ]
      for (const id of ids) {
        fs.mkdirSync(nodePath.join(dir, id, "config"), { recursive: true })
        fs.writeFileSync(nodePath.join(dir, id, "config/a.yaml"), id)
      }
      // An unfinished pull's journal names the oldest: it stays.
      fs.writeFileSync(
        nodePath.join(root, ".agentsync/pull-journal.json"),
        JSON.stringify({ backup: nodePath.join(dir, ids[0]!) })
      )
      const { pruneBackups } = yield* Effect.promise(() => import("../../src/stages/files/backups.js"))
      const removed = yield* pruneBackups(root, { keep: 10, maxAgeDays: 30 })
      expect(removed).toEqual([ids[1]])
      expect(fs.readdirSync(dir).sort()).toEqual([ids[0], ids[2]].sort())
    })
  )
})

describe("answers cut short", () => {
  it.live(
    "are retried: a push whose answer was lost makes one revision, a pull whose manifest or archive broke off completes",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("cuts"))
        const files = Object.fromEntries(
          Array.from({ length: 40 }, (_, i) => [`content/c/${i}.md`, randomBytes(3000).toString("hex")])
        )
        const a = project(files)
        cutter.cut(uploadRequest, "headers")
        cutter.cut(uploadRequest, "none")
        const pushed = yield* sync(a, t.token, cutter.url).push()
        const revisions = yield* Effect.promise(() =>
          run({ endpoint: { mode: "direct", origin: server.url }, token: t.token }, (c) => c.revisions())
        )
        expect(revisions.map((r) => r.id)).toEqual([pushed.revision])
        expect(cutter.seen.filter((s) => s.startsWith("POST")).length).toBe(3)

        const b = project()
        cutter.cut(manifestRequest, "half")
        cutter.cut(downloadRequest, "half")
        const pulled = yield* sync(b, t.token, cutter.url).pull()
        expect(pulled.actions).toEqual({ write: 40 })
        expect(services(b)).toEqual(services(a))
      })
  )
})

describe("content that compresses very well", () => {
  it.live(
    "inside a mixed upload, is pulled by every client, in whole or alone",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("ratio"))
        const a = project({
          "config/noise.bin": randomBytes(2 * 1024 * 1024),
          "config/zeros.bin": Buffer.alloc(8 * 1024 * 1024),
          "config/lines.txt": "the same line again\n".repeat(200_000)
        })
        yield* sync(a, t.token).push()
        const b = project()
        yield* sync(b, t.token).pull()
        expect(services(b)).toEqual(services(a))
        // Alone: a pull that asks for just the file that compresses best.
        write(a, { "config/zeros.bin": Buffer.alloc(9 * 1024 * 1024) })
        yield* sync(a, t.token).push()
        const alone = yield* sync(b, t.token).pull()
        expect(alone.actions).toEqual({ write: 1 })
        expect(services(b)).toEqual(services(a))
      }),
    60_000
  )
})

describe("what a killed run left", () => {
  it.live("staging folders and temp files in .agentsync are removed by the next push or pull", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("litter"))
      const a = project({ "config/a.yaml": "a\n" })
      const state = nodePath.join(a, ".agentsync")
      fs.mkdirSync(nodePath.join(state, "staging-2020-01-01T00-00-00-000Z-abcdef/config"), { recursive: true })
      fs.writeFileSync(nodePath.join(state, "staging-2020-01-01T00-00-00-000Z-abcdef/config/a.yaml"), "half")
      // A temp file of a process that is gone (pid 1 is never agentsync; a pid far above pid_max never runs).
      fs.writeFileSync(nodePath.join(state, ".agentsync-tmp-99999999-0123abcd-0"), "partial")
      yield* sync(a, t.token).push()
      expect(fs.readdirSync(state).filter((n) => n.startsWith("staging-") || n.startsWith(".agentsync-tmp-"))).toEqual(
        []
      )
    })
  )
})
