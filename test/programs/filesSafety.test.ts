// File sync between clients through the real server when the shape of the tree changes, when the network cuts
// answers short, when content compresses very well, and after a run was killed.
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import { createServer, type IncomingMessage, request, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as nodePath from "node:path"
import { Effect, Either, Layer, type Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import { FileSyncService, type FilesOptions, layer as fileSyncLayer } from "../../src/programs/files.js"
import { layer as clientLayer } from "../../src/services/SyncApi.js"
import { run, startServer } from "../server/support.js"
import { freshDatabase } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"

let server: Awaited<ReturnType<typeof startServer>>
let cutter: Awaited<ReturnType<typeof proxy>>
beforeAll(async () => {
  server = await startServer(await freshDatabase("filessafe"))
  cutter = await proxy(server.url)
})
afterAll(async () => {
  await new Promise((r) => cutter?.server.close(r))
  await server?.stop()
})

const tempDir = tempDirs("files-safety")

const project = async (files: Record<string, string | Buffer> = {}) => {
  const root = tempDir("project")
  await fs.writeFile(nodePath.join(root, "agentsync.yaml"), "services: services\n")
  await fs.mkdir(nodePath.join(root, "services"))
  await write(root, files)
  return root
}
const write = async (root: string, files: Record<string, string | Buffer>) => {
  for (const [p, bytes] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    await fs.mkdir(nodePath.dirname(full), { recursive: true })
    await fs.writeFile(full, bytes)
  }
}
const tree = async (dir: string): Promise<Record<string, string>> => {
  const out: Record<string, string> = {}
  const walk = async (d: string, rel: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) await walk(nodePath.join(d, e.name), r)
      else out[r] = (await fs.readFile(nodePath.join(d, e.name))).toString("base64")
    }
  }
  await walk(dir, "")
  return out
}
const services = (root: string) => tree(nodePath.join(root, "services"))

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
  const either = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.either(Effect.flatMap(FileSyncService, f).pipe(Effect.provide(layer))))
  const go = async <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) => {
    const r = await either(f)
    if (Either.isLeft(r)) throw new Error(String((r.left as { message?: string }).message ?? r.left))
    return r.right
  }
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
  it("is pulled as a delete plus a create, the replaced file kept in a backup, in both directions", async () => {
    const t = await server.createTenant("shapes")
    const a = await project({
      "web/theme.json": '{"old":true}\n',
      "agents/x/config.yaml": "id: x\n",
      "agents/x/system_prompt.md": "x\n",
      "config/app.yaml": "a\n"
    })
    await sync(a, t.token).push()
    const b = await project()
    await sync(b, t.token).pull()
    expect(await services(b)).toEqual(await services(a))

    // On A, the file becomes a folder; pushed without --delete, the file's removal goes with the folder's creation.
    await fs.rm(nodePath.join(a, "services/web/theme.json"))
    await write(a, { "web/theme.json/dark.json": "{}\n", "web/theme.json/light.json": "{}\n" })
    const pushed = await sync(a, t.token).push()
    expect(pushed.actions).toEqual({ upload: 2, "delete-remote": 1 })
    expect(pushed.files.find((f) => f.path === "web/theme.json")?.note).toMatch(/replaced by the folder/)
    const pulled = await sync(b, t.token).pull()
    expect(pulled.actions).toEqual({ write: 2, "delete-local": 1 })
    expect(await services(b)).toEqual(await services(a))
    expect(await fs.readFile(nodePath.join(pulled.backup!, "web/theme.json"), "utf8")).toBe('{"old":true}\n')

    // And back: the folder becomes a file again.
    await fs.rm(nodePath.join(b, "services/web/theme.json"), { recursive: true })
    await write(b, { "web/theme.json": '{"new":true}\n' })
    expect((await sync(b, t.token).push()).actions).toEqual({ upload: 1, "delete-remote": 2 })
    const back = await sync(a, t.token).pull()
    expect(back.actions).toEqual({ write: 1, "delete-local": 2 })
    expect(await services(a)).toEqual(await services(b))
    // Every later run agrees: nothing to do either way.
    expect((await sync(a, t.token).push()).actions).toEqual({})
    expect((await sync(b, t.token).pull()).actions).toEqual({})
  })

  it("is a conflict, not a loss, when the file being replaced was edited on the side that pulls", async () => {
    const t = await server.createTenant("shapes-conflict")
    const a = await project({ "web/theme.json": "1\n", "config/app.yaml": "x\n" })
    await sync(a, t.token).push()
    const b = await project()
    await sync(b, t.token).pull()
    await fs.rm(nodePath.join(a, "services/web/theme.json"))
    await write(a, { "web/theme.json/x.json": "{}\n" })
    await sync(a, t.token).push()
    await write(b, { "web/theme.json": "edited on b\n" })
    const refused = await sync(b, t.token).pullEither()
    expect(Either.isLeft(refused) && refused.left._tag).toBe("Conflict")
    expect(await fs.readFile(nodePath.join(b, "services/web/theme.json"), "utf8")).toBe("edited on b\n")
    const forced = await sync(b, t.token).pull({ force: true })
    expect(await fs.readFile(nodePath.join(forced.backup!, "web/theme.json"), "utf8")).toBe("edited on b\n")
    expect(await services(b)).toEqual(await services(a))
  })
})

describe("backups", () => {
  it("a restore puts back the old shape: the folder that replaced a file, and the file that replaced a folder, move into a new backup", async () => {
    const t = await server.createTenant("restore-shapes")
    const original = {
      "skills/pdf/reference.md": "ref\n",
      "skills/pdf/scripts/a.py": "a\n",
      "skills/pdf/scripts/b.py": "b\n",
      "skills/pdf/SKILL.md": "# pdf\n",
      "config/x.yaml": "x\n"
    }
    const a = await project(original)
    await sync(a, t.token).push()
    const b = await project()
    await sync(b, t.token).pull()
    await fs.rm(nodePath.join(a, "services/skills/pdf/reference.md"))
    await fs.rm(nodePath.join(a, "services/skills/pdf/scripts"), { recursive: true })
    await write(a, { "skills/pdf/reference.md/part1.md": "1\n", "skills/pdf/scripts": "see the repository\n" })
    // Three of five files go (the delete guard asks for --force).
    await sync(a, t.token).push({ force: true })
    const pulled = await sync(b, t.token).pull({ force: true })
    expect(await services(b)).toEqual(await services(a))
    const id = nodePath.basename(pulled.backup!)
    const config = new SyncConfig({ projectRoot: b, servicesPath: nodePath.join(b, "services") })
    const { restore, backups } = await import("../../src/programs/files.js")
    const restored = await Effect.runPromise(restore(id).pipe(Effect.provideService(CurrentConfig, config)))
    expect(restored.restored.length).toBe(3)
    const back = await services(b)
    for (const [path, text] of Object.entries(original))
      expect([path, Buffer.from(back[path] ?? "", "base64").toString()]).toEqual([path, text])
    expect(Object.keys(back).sort()).toEqual(Object.keys(original).sort())
    // What the restore replaced is itself a backup, recorded and listed first.
    const list = await Effect.runPromise(backups().pipe(Effect.provideService(CurrentConfig, config)))
    expect(list.map((l) => [l.id === restored.backup, l.cause, l.files])).toEqual([
      [true, `restore of ${id}`, 2],
      [false, expect.stringMatching(/^pull of revision /), 3]
    ])
  })

  it("are pruned beyond the count and the age, never the newest nor one an unfinished pull needs", async () => {
    const root = await project()
    const dir = nodePath.join(root, ".agentsync/backups")
    const ids = [
      "2001-01-01T00-00-00-000Z-aaaaaa",
      "2001-01-02T00-00-00-000Z-bbbbbb",
      new Date().toISOString().replace(/[:.]/g, "-").concat("-cccccc")
    ]
    for (const id of ids)
      await write(root, {})
        .then(() => fs.mkdir(nodePath.join(dir, id, "config"), { recursive: true }))
        .then(() => fs.writeFile(nodePath.join(dir, id, "config/a.yaml"), id))
    // An unfinished pull's journal names the oldest: it stays.
    await fs.writeFile(
      nodePath.join(root, ".agentsync/pull-journal.json"),
      JSON.stringify({ backup: nodePath.join(dir, ids[0]!) })
    )
    const { pruneBackups } = await import("../../src/stages/files/backups.js")
    const removed = await Effect.runPromise(pruneBackups(root, { keep: 10, maxAgeDays: 30 }))
    expect(removed).toEqual([ids[1]])
    expect((await fs.readdir(dir)).sort()).toEqual([ids[0], ids[2]].sort())
  })
})

describe("answers cut short", () => {
  it("are retried: a push whose answer was lost makes one revision, a pull whose manifest or archive broke off completes", async () => {
    const t = await server.createTenant("cuts")
    const files = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`content/c/${i}.md`, randomBytes(3000).toString("hex")])
    )
    const a = await project(files)
    cutter.cut(uploadRequest, "headers")
    cutter.cut(uploadRequest, "none")
    const pushed = await sync(a, t.token, cutter.url).push()
    const revisions = await run({ endpoint: { mode: "direct", origin: server.url }, token: t.token }, (c) =>
      c.revisions()
    )
    expect(revisions.map((r) => r.id)).toEqual([pushed.revision])
    expect(cutter.seen.filter((s) => s.startsWith("POST")).length).toBe(3)

    const b = await project()
    cutter.cut(manifestRequest, "half")
    cutter.cut(downloadRequest, "half")
    const pulled = await sync(b, t.token, cutter.url).pull()
    expect(pulled.actions).toEqual({ write: 40 })
    expect(await services(b)).toEqual(await services(a))
  })
})

describe("content that compresses very well", () => {
  it("inside a mixed upload, is pulled by every client, in whole or alone", async () => {
    const t = await server.createTenant("ratio")
    const a = await project({
      "config/noise.bin": randomBytes(2 * 1024 * 1024),
      "config/zeros.bin": Buffer.alloc(8 * 1024 * 1024),
      "config/lines.txt": "the same line again\n".repeat(200_000)
    })
    await sync(a, t.token).push()
    const b = await project()
    await sync(b, t.token).pull()
    expect(await services(b)).toEqual(await services(a))
    // Alone: a pull that asks for just the file that compresses best.
    await write(a, { "config/zeros.bin": Buffer.alloc(9 * 1024 * 1024) })
    await sync(a, t.token).push()
    const alone = await sync(b, t.token).pull()
    expect(alone.actions).toEqual({ write: 1 })
    expect(await services(b)).toEqual(await services(a))
  }, 60_000)
})

describe("what a killed run left", () => {
  it("staging folders and temp files in .agentsync are removed by the next push or pull", async () => {
    const t = await server.createTenant("litter")
    const a = await project({ "config/a.yaml": "a\n" })
    const state = nodePath.join(a, ".agentsync")
    await fs.mkdir(nodePath.join(state, "staging-2020-01-01T00-00-00-000Z-abcdef/config"), { recursive: true })
    await fs.writeFile(nodePath.join(state, "staging-2020-01-01T00-00-00-000Z-abcdef/config/a.yaml"), "half")
    // A temp file of a process that is gone (pid 1 is never agentsync; a pid far above pid_max never runs).
    await fs.writeFile(nodePath.join(state, ".agentsync-tmp-99999999-0123abcd-0"), "partial")
    await sync(a, t.token).push()
    expect(
      (await fs.readdir(state)).filter((n) => n.startsWith("staging-") || n.startsWith(".agentsync-tmp-"))
    ).toEqual([])
  })
})
