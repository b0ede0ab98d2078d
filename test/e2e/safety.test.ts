// What a hostile or broken server, a typo, a signal or a kill can do to a project, through the built CLI: nothing that
// loses a file or a row, and nothing left behind that the next run does not clear.
import { type ChildProcess, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, watch, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { createGzip } from "node:zlib"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { manifestChecksum } from "../../src/domain/hash.js"
import { ensureBuilt, start } from "../support/cli.js"
import { record, sha, tarGz } from "../support/hostile.js"
import { freshDatabase, query } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("e2e-safety")
const children = new Set<ChildProcess>()
afterAll(() => {
  for (const c of children) c.kill("SIGKILL")
})

beforeAll(() => {
  ensureBuilt()
})

/** Starts `agentsync ARGS` in `cwd` with a clean environment plus `env`; killed after `limitMs`. */
const started = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}, limitMs = 60_000) => {
  const s = start(args, { cwd, env, limitMs })
  children.add(s.child)
  void s.done.then(() => children.delete(s.child))
  return s
}
const run = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}, limitMs?: number) =>
  started(args, cwd, env, limitMs).done

/** Every file under a folder with its bytes (base64); agentsync's own state (`.agentsync`) is left out. */
const snapshot = (root: string, skip = new Set([".agentsync"])): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (dir: string, rel: string) => {
    if (!existsSync(dir)) return
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      if (skip.has(r)) continue
      if (e.isDirectory()) walk(join(dir, e.name), r)
      else out[r] = readFileSync(join(dir, e.name)).toString("base64")
    }
  }
  walk(root, "")
  return out
}
const litter = (root: string) =>
  Object.keys(snapshot(root)).filter((p) => p.split("/").some((s) => s.startsWith(".agentsync-tmp-")))
const stagingLeft = (root: string) =>
  existsSync(join(root, ".agentsync"))
    ? readdirSync(join(root, ".agentsync")).filter((n) => n.startsWith("staging-"))
    : []

/** A project: agentsync.yaml and a services/ tree with the given files. */
const project = (
  name: string,
  files: Record<string, string | Buffer> = { "agents/a/config.yaml": "id: a\nname: a\n" },
  yaml = "services: services\n"
) => {
  const root = tempDir(name)
  writeFileSync(join(root, "agentsync.yaml"), yaml)
  mkdirSync(join(root, "services"), { recursive: true })
  for (const [p, bytes] of Object.entries(files)) {
    mkdirSync(join(root, "services", p, ".."), { recursive: true })
    writeFileSync(join(root, "services", p), bytes)
  }
  return root
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

/** A tenant server under the test's control: it answers every request with the handler in force, and records them. */
let hostile: {
  server: Server
  url: string
  handler: Handler
  requests: Array<string>
  onRequest: (line: string) => void
}
beforeAll(async () => {
  const server = createServer((req, res) => {
    const line = `${req.method} ${req.url}`
    hostile.requests.push(line)
    hostile.onRequest(line)
    let body = ""
    req.on("data", (d) => {
      body += d
    })
    req.on("end", () => hostile.handler(req, res, body))
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  hostile = {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    handler: () => {},
    requests: [],
    onRequest: () => {}
  }
})
afterAll(() => new Promise((r) => hostile.server.close(r)))

const remote = (extra: Record<string, string> = {}) => ({
  AGENTSYNC_DIRECT_URL: hostile.url,
  AGENTSYNC_TOKEN: "ast_0000000000000000_token",
  ...extra
})
const isManifest = (req: IncomingMessage) => req.url!.startsWith("/api/v1/sync/files/manifest")
const downloads = () => hostile.requests.filter((r) => !r.includes("/manifest")).length

interface Tree {
  readonly manifest: string
  /** The whole tree's archive. */
  readonly archive: Buffer
  /** The archive of some paths. */
  readonly select: (paths: ReadonlyArray<string>) => Buffer
}

/** The manifest and archives of a tree, as a server holding it as revision `revision` answers. */
const tree = (files: Record<string, string | Buffer>, revision = "r1"): Tree => {
  const entries = Object.entries(files)
    .map(([path, bytes]) => ({ path, size: Buffer.byteLength(bytes), sha256: sha(bytes) }))
    .sort((a, b) => (a.path < b.path ? -1 : 1))
  const manifest = JSON.stringify({ tenant: "t", revision, entries, checksum: manifestChecksum(entries) })
  const select = (paths: ReadonlyArray<string>) =>
    tarGz(...paths.map((path) => record({ path }, Buffer.from(files[path]!))))
  return { manifest, archive: select(Object.keys(files)), select }
}
const serving =
  (t: Omit<Tree, "select"> & Partial<Pick<Tree, "select">>, download?: Handler): Handler =>
  (req, res, body) => {
    if (isManifest(req)) {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(t.manifest)
    } else if (download !== undefined) download(req, res, body)
    else {
      res.writeHead(200, { "content-type": "application/gzip" })
      // A selection (POST …/files/select) gets just the paths asked for, as the real server answers.
      res.end(
        req.method === "POST" && t.select !== undefined
          ? t.select((JSON.parse(body) as { paths: Array<string> }).paths)
          : t.archive
      )
    }
  }
/** A JSON answer that starts with `head` and repeats `chunk` for as long as it is read. */
const neverEnding =
  (head: string, chunk: Buffer): Handler =>
  (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.write(head)
    const more = () => {
      while (!res.destroyed && res.write(chunk)) {}
      if (!res.destroyed) res.once("drain", more)
    }
    res.on("error", () => {})
    more()
  }
const use = (handler: Handler) => {
  hostile.handler = handler
  hostile.requests = []
  hostile.onRequest = () => {}
}

describe("a pull never writes what file sync does not carry, whatever the server says", () => {
  it("refuses .git/…, agentsync.yaml, a membership folder's own name and the like before downloading anything", async () => {
    const evil = '[core]\n\tfsmonitor = "touch /tmp/agentsync-pwned"\n'
    // (Every rule of the membership has its unit test; these are the paths an attack would use.)
    for (const path of [".git/config", "skills/s/.GIT/config", "agents", ".agentsync/files-base.json"]) {
      const p = project(`outside-${path.replace(/\W+/g, "-")}`, {
        "agents/a/config.yaml": "id: a\n",
        ".git/config": "[core]\n"
      })
      const before = snapshot(p)
      use(serving(tree({ "agents/a/config.yaml": "id: a\n", [path]: evil })))
      const res = await run(["files", "pull", "--force"], p, remote())
      expect([res.code, res.stderr], path).toEqual([
        1,
        expect.stringContaining(`refused what the server sent (${hostile.url}/api/v1/sync), ${JSON.stringify(path)}`)
      ])
      expect(res.stderr).toMatch(/nothing was written/)
      expect(snapshot(p)).toEqual(before)
      expect(downloads()).toBe(0)
    }
    // With `services: .` the project file is inside the tree: a pull never replaces it either.
    const flat = project("flat", {}, "services: .\n")
    mkdirSync(join(flat, "agents/a"), { recursive: true })
    writeFileSync(join(flat, "agents/a/config.yaml"), "id: a\n")
    const before = snapshot(flat)
    use(serving(tree({ "agentsync.yaml": "direct_url: http://attacker.example\n" })))
    const res = await run(["files", "pull", "--force"], flat, remote())
    expect(res.code).toBe(1)
    expect(snapshot(flat)).toEqual(before)
  })

  it("a remote file where a folder is (agents/a) is refused before download, and the folder stays where it is", async () => {
    const p = project("folder-name", { "agents/a/config.yaml": "id: a\n", "agents/a/system_prompt.md": "hi\n" })
    const before = snapshot(p)
    use(serving(tree({ "agents/a": "a file now\n" })))
    const res = await run(["files", "pull"], p, remote())
    expect(res.code, res.stderr).toBe(3)
    expect(res.stderr).toMatch(/agents\/a/)
    expect(snapshot(p)).toEqual(before)
    expect(downloads()).toBe(0)
  })
})

describe("bounded: a manifest or a body that never ends, or trickles, is cut with a clear error", () => {
  it("an endless manifest stops at the manifest cap; a manifest of more files than the cap is refused", async () => {
    const p = project("endless")
    const before = snapshot(p)
    use(
      neverEnding(
        '{"tenant":"t","revision":"r","entries":[',
        Buffer.from(`${'{"path":"agents/a/x.md","size":1,"sha256":"'.concat("0".repeat(64))}"},`.repeat(1000))
      )
    )
    const endless = await run(["files", "pull"], p, remote(), 120_000)
    expect(endless.code).toBe(1)
    expect(endless.stderr).toMatch(
      /error: refused what the server sent .*: the manifest lists more than 200000 files; nothing was written/
    )
    expect(endless.stderr).not.toMatch(/RangeError|\n\s+at /)
    expect(snapshot(p)).toEqual(before)
    expect(existsSync(join(p, ".agentsync/remote-manifest.json"))).toBe(false)

    // An endless string: the byte cap.
    use(neverEnding('{"tenant":"', Buffer.alloc(1 << 16, "a")))
    const bytes = await run(["files", "pull"], p, remote(), 120_000)
    expect(bytes.code).toBe(1)
    expect(bytes.stderr).toMatch(
      /error: refused what the server sent .*: the manifest is larger than 67108864 bytes; nothing was written/
    )
    expect(bytes.stderr).not.toMatch(/RangeError|\n\s+at /)

    const huge = Array.from({ length: 200_001 }, (_, i) => ({ path: `content/c/${i}.md`, size: 1, sha256: sha("x") }))
    use(
      serving({
        manifest: JSON.stringify({ tenant: "t", revision: "r", entries: huge, checksum: manifestChecksum(huge) }),
        archive: Buffer.alloc(0)
      })
    )
    const many = await run(["files", "pull"], p, remote(), 120_000)
    expect(many.code).toBe(1)
    expect(many.stderr).toMatch(/the manifest lists more than 200000 files/)
    expect(snapshot(p)).toEqual(before)
  }, 240_000)

  it("a download that trickles is cut at the minimum rate, one that goes on is cut at the deadline; the tree is untouched", async () => {
    const p = project("trickle")
    const before = snapshot(p)
    const t = tree({ "agents/a/config.yaml": "id: changed\n" })
    use(
      serving(t, (_req, res) => {
        res.writeHead(200, { "content-type": "application/gzip" })
        let i = 0
        const timer = setInterval(
          () => (res.destroyed || i >= t.archive.length ? clearInterval(timer) : res.write(t.archive.subarray(i, ++i))),
          200
        )
      })
    )
    const slow = await run(
      ["files", "pull", "--force"],
      p,
      remote({
        AGENTSYNC_MIN_RATE: "100",
        AGENTSYNC_RATE_WINDOW_MS: "1000",
        AGENTSYNC_RETRY_MAX: "1",
        AGENTSYNC_RETRY_BASE_MS: "10"
      }),
      30_000
    )
    expect([slow.code, slow.signal]).toEqual([1, null])
    expect(slow.stderr).toMatch(/answer too slow: .* below the minimum of 100 bytes\/s \(gave up after 2 attempts\)/)
    expect(slow.stderr).not.toMatch(/unsafe tarball/)
    expect(snapshot(p)).toEqual(before)
    expect(stagingLeft(p)).toEqual([])

    // A body that keeps coming at a fair rate, for a file the manifest says is large: the deadline ends it.
    const big = { path: "agents/a/big.bin", size: 200 * 1024 * 1024, sha256: sha("never") }
    const manifest = JSON.stringify({ tenant: "t", revision: "r2", entries: [big], checksum: manifestChecksum([big]) })
    use(
      serving({ manifest, archive: Buffer.alloc(0) }, (_req, res) => {
        res.writeHead(200, { "content-type": "application/gzip" })
        const gz = createGzip({ level: 0 })
        gz.pipe(res)
        gz.write(record({ path: big.path, size: big.size }).subarray(0, 512))
        const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : gz.write(randomBytes(8192))), 50)
      })
    )
    const long = await run(
      ["files", "pull", "--force"],
      p,
      remote({ AGENTSYNC_TRANSFER_TIMEOUT_MS: "2500", AGENTSYNC_MIN_RATE: "100" }),
      30_000
    )
    expect(long.code).toBe(1)
    expect(long.stderr).toMatch(/no result within the transfer deadline of 2.5 s/)
    expect(snapshot(p)).toEqual(before)
    expect(stagingLeft(p)).toEqual([])
  }, 90_000)

  it("a connection cut in the first kilobytes of a download is a transport error, retried, never an unsafe archive", async () => {
    const p = project("cut")
    const before = snapshot(p)
    const t = tree({ "agents/a/config.yaml": randomBytes(20_000).toString("hex") })
    use(
      serving(t, (_req, res) => {
        res.writeHead(200, { "content-type": "application/gzip" })
        res.write(t.archive.subarray(0, 100))
        setTimeout(() => res.socket?.destroy(), 20)
      })
    )
    const res = await run(
      ["files", "pull", "--force"],
      p,
      remote({ AGENTSYNC_RETRY_MAX: "2", AGENTSYNC_RETRY_BASE_MS: "10" })
    )
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/connection lost during the answer.*\(gave up after 3 attempts\)/)
    expect(res.stderr).not.toMatch(/unsafe tarball/)
    expect(downloads()).toBe(3)
    expect(snapshot(p)).toEqual(before)
    expect(stagingLeft(p)).toEqual([])
  })
})

describe("signals: an interrupt is not a success", () => {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143]
  ] as const) {
    it(`${signal} during a pull's download exits ${code}, says nothing was changed, and leaves no staging folder`, async () => {
      const p = project(`signal-pull-${signal}`)
      const before = snapshot(p)
      const t = tree({ "agents/a/config.yaml": "id: remote\n", "skills/s/SKILL.md": "# s\n" })
      use(
        serving(t, (_req, res) => {
          res.writeHead(200, { "content-type": "application/gzip" })
          res.write(t.archive.subarray(0, 10)) // and then nothing
        })
      )
      const { child, done } = started(["files", "pull", "--force"], p, remote())
      hostile.onRequest = (line) => {
        if (!line.includes("/manifest")) setImmediate(() => child.kill(signal))
      }
      const res = await done
      expect([res.code, res.signal]).toEqual([code, null])
      expect(res.stderr.trim().split("\n").pop()).toMatch(
        new RegExp(
          `^interrupted by ${signal}: pull: downloading 2 file\\(s\\) into a private staging folder; nothing in .*services changed yet$`
        )
      )
      expect(snapshot(p)).toEqual(before)
      expect(stagingLeft(p)).toEqual([])
    })
  }

  it("SIGINT during a pull's swap, which runs to its end, exits 130 and says the revision is in place", async () => {
    const n = 2000
    const oldFiles = Object.fromEntries(Array.from({ length: n }, (_, i) => [`content/c/${i}.md`, `old ${i}\n`]))
    const newFiles = Object.fromEntries(Array.from({ length: n }, (_, i) => [`content/c/${i}.md`, `new ${i}\n`]))
    use(serving(tree(newFiles)))
    let interrupted = 0
    for (let attempt = 0; attempt < 3 && interrupted === 0; attempt++) {
      const p = project(`sigint-swap-${attempt}`, oldFiles)
      mkdirSync(join(p, ".agentsync"))
      const { child, done } = started(["files", "pull", "--force"], p, remote())
      // The journal is written as the swap starts: the signal comes during the swap, once (a second one ends the
      // run at once).
      let sent = false
      const watcher = watch(join(p, ".agentsync"), (_event, name) => {
        if (name === "pull-journal.json" && !sent) sent = child.kill("SIGINT")
      })
      const res = await done
      watcher.close()
      if (res.code !== 130) continue
      interrupted++
      for (const [path, text] of Object.entries(newFiles))
        expect(readFileSync(join(p, "services", path), "utf8")).toBe(text)
      expect(res.stderr.trim().split("\n").pop()).toMatch(
        new RegExp(`^interrupted by SIGINT: pull: revision r1 is in place \\(${n} written, 0 deleted\\)`)
      )
    }
    expect(interrupted).toBeGreaterThan(0)
  }, 120_000)

  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143]
  ] as const) {
    it(`${signal} during a local sync exits ${code} and the database is as it was`, async () => {
      const url = await freshDatabase("sigsync")
      const p = project(`signal-local-${signal}`, {
        "agents/a/config.yaml": "id: a\nname: a\n",
        "skills/s/config.yaml": "id: s\nname: s\n"
      })
      // Migrated first, so the run below gets as far as its transaction.
      expect((await run(["local", "diff"], p, { DATABASE_URL: url })).code).toBe(0)
      // Another session holds the local-sync lock: the run waits inside its transaction.
      const blocker = new pg.Client({ connectionString: url })
      await blocker.connect()
      await blocker.query("BEGIN")
      await blocker.query("SELECT pg_advisory_xact_lock(hashtext('agentsync.local-sync'))")
      try {
        const { child, done } = started(["local", "sync", "--to-db"], p, { DATABASE_URL: url })
        // Polled (the run gives no other sign that it waits), a few times a second.
        for (let waiting = 0; waiting === 0; ) {
          await new Promise((r) => setTimeout(r, 100))
          const rows = await query<{ n: number }>(
            url,
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'agentsync' AND wait_event_type = 'Lock'"
          )
          waiting = rows[0]!.n
        }
        child.kill(signal)
        const res = await done
        expect([res.code, res.signal]).toEqual([code, null])
        expect(res.stderr.trim().split("\n").pop()).toMatch(
          new RegExp(`^interrupted by ${signal}: local sync: .*nothing changed`)
        )
      } finally {
        await blocker.query("ROLLBACK")
        await blocker.end()
      }
      expect(await query(url, "SELECT id FROM agents UNION ALL SELECT id FROM skills")).toEqual([])
    })
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} stops serve, which runs until stopped, with exit 0`, async () => {
      const url = await freshDatabase(`sigserve${signal.toLowerCase()}`)
      const { child, done } = started(["serve", "--port", "0"], tempDir(`serve-${signal}`), { DATABASE_URL: url })
      let err = ""
      await new Promise<void>((resolve) =>
        child.stderr!.on("data", (d) => {
          err += d
          if (err.includes("listening on")) resolve()
        })
      )
      child.kill(signal)
      const res = await done
      expect([res.code, res.signal], res.stderr).toEqual([0, null])
      expect(res.stderr.trim().split("\n").pop()).toBe(`stopped by ${signal}`)
    })
  }
})

describe("kill -9", () => {
  it("at any point of a pull's swap, every path holds its old or its new bytes; the next run finishes", async () => {
    const n = 1000
    const oldFiles = Object.fromEntries(Array.from({ length: n }, (_, i) => [`content/c/${i}.md`, `old ${i}\n`]))
    const newFiles = Object.fromEntries(Array.from({ length: n }, (_, i) => [`content/c/${i}.md`, `new ${i}\n`]))
    use(serving(tree(newFiles)))
    let interrupted = 0
    for (let attempt = 0; attempt < 3; attempt++) {
      const p = project(`kill-swap-${attempt}`, oldFiles)
      mkdirSync(join(p, ".agentsync"))
      const { child, done } = started(["files", "pull", "--force"], p, remote())
      const watcher = watch(join(p, ".agentsync"), (_event, name) => {
        if (name === "pull-journal.json") setTimeout(() => child.kill("SIGKILL"), Math.floor(Math.random() * 15))
      })
      const res = await done
      watcher.close()
      if (res.signal === "SIGKILL") interrupted++
      for (const [path, text] of Object.entries(oldFiles)) {
        const full = join(p, "services", path)
        const now = existsSync(full) ? readFileSync(full, "utf8") : "(absent)"
        expect([path, now === text || now === newFiles[path]]).toEqual([path, true])
      }
      const again = await run(["files", "pull", "--force"], p, remote())
      expect(again.code, again.stderr).toBe(0)
      for (const [path, text] of Object.entries(newFiles))
        expect(readFileSync(join(p, "services", path), "utf8")).toBe(text)
      expect(stagingLeft(p)).toEqual([])
      expect(existsSync(join(p, ".agentsync/pull-journal.json"))).toBe(false)
    }
    expect(interrupted).toBeGreaterThan(0)
  }, 240_000)

  it("during a sync to disk, leaves temp files that the next run removes", async () => {
    const url = await freshDatabase("killdisk")
    const files = Object.fromEntries(
      Array.from({ length: 2000 }, (_, i) => [
        `content/docs/p${i}.md`,
        `---\ntitle: Page ${i}\nslug: p${i}\n---\n\n${"body ".repeat(50)}${i}\n`
      ])
    )
    const p = project("kill-disk", files)
    expect((await run(["local", "sync", "--to-db"], p, { DATABASE_URL: url }, 120_000)).code).toBe(0)
    // Every file changed on disk: the sync to disk rewrites them all, through temp files beside them.
    for (const path of Object.keys(files)) writeFileSync(join(p, "services", path), `${files[path]}edited\n`)
    const { child, done } = started(["local", "sync", "--to-disk"], p, { DATABASE_URL: url }, 120_000)
    const watcher = watch(join(p, "services/content/docs"), (_event, name) => {
      if (name?.startsWith(".agentsync-tmp-")) child.kill("SIGKILL")
    })
    const res = await done
    watcher.close()
    expect(res.signal).toBe("SIGKILL")
    const again = await run(["local", "sync", "--to-disk"], p, { DATABASE_URL: url }, 120_000)
    expect(again.code, again.stderr).toBe(0)
    expect(litter(join(p, "services"))).toEqual([])
    for (const path of Object.keys(files))
      expect(readFileSync(join(p, "services", path), "utf8")).not.toContain("edited")
  }, 300_000)
})

describe("a typo is not an empty project", () => {
  it("a services path that does not exist or does not look like a project is exit 2 naming it, for every command that reads the tree", async () => {
    const url = await freshDatabase("typo")
    const p = project("typo", {
      "agents/a/config.yaml": "id: a\nname: a\n",
      "skills/s/config.yaml": "id: s\nname: s\n"
    })
    expect((await run(["local", "sync", "--to-db"], p, { DATABASE_URL: url })).code).toBe(0)
    const rows = await query(url, "SELECT id FROM agents UNION ALL SELECT id FROM skills ORDER BY id")
    expect(rows.length).toBe(2)
    for (const args of [
      ["--services", "servics", "local", "sync", "--to-db", "--delete-orphans"],
      ["--services", "servics", "files", "push", "--delete"],
      ["validate", "/nonexistent"],
      ["--services", "servics", "local", "diff"]
    ]) {
      const res = await run(args, p, { DATABASE_URL: url, ...remote() })
      expect([args.join(" "), res.code]).toEqual([args.join(" "), 2])
      expect(res.stderr).toMatch(/(servics|\/nonexistent) does not exist/)
    }
    mkdirSync(join(p, "empty"))
    const empty = await run(["--services", "empty", "local", "sync", "--to-db", "--delete-orphans"], p, {
      DATABASE_URL: url
    })
    expect([empty.code, empty.stderr]).toEqual([2, expect.stringMatching(/empty does not look like a project/)])
    expect(await query(url, "SELECT id FROM agents UNION ALL SELECT id FROM skills ORDER BY id")).toEqual(rows)
  })

  it("local sync refuses to delete more than half of a kind without --force, and names every deletion it makes", async () => {
    const url = await freshDatabase("guard")
    const p = project("guard", {
      "agents/a/config.yaml": "id: a\nname: a\n",
      "agents/b/config.yaml": "id: b\nname: b\n",
      "skills/s/config.yaml": "id: s\nname: s\n"
    })
    expect((await run(["local", "sync", "--to-db"], p, { DATABASE_URL: url })).code).toBe(0)
    spawnSync("rm", ["-r", join(p, "services/agents")])
    const refused = await run(["local", "sync", "--to-db", "--delete-orphans"], p, { DATABASE_URL: url })
    expect(refused.code).toBe(3)
    expect(refused.stderr).toMatch(/refusing to delete 2 of 2 agents rows in the database/)
    expect((await query(url, "SELECT id FROM agents ORDER BY id")).length).toBe(2)
    const forced = await run(["local", "sync", "--to-db", "--delete-orphans", "--force"], p, { DATABASE_URL: url })
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.stdout).toMatch(/deleted from the database: agents a\ndeleted from the database: agents b/)
    expect(await query(url, "SELECT id FROM agents")).toEqual([])
  })
})

describe("backups", () => {
  it("are kept to the configured count, listed, and put back by files restore", async () => {
    const p = project("backups", {})
    const env = remote({ AGENTSYNC_BACKUPS_KEEP: "2" })
    for (let v = 1; v <= 4; v++) {
      use(serving(tree({ "config/app.yaml": `version: ${v}\n` }, `r${v}`)))
      const res = await run(["files", "pull", "--force"], p, env)
      expect(res.code, res.stderr).toBe(0)
    }
    const listed = JSON.parse((await run(["--json", "files", "backups"], p, env)).stdout) as {
      backups: Array<{ id: string; files: number; cause: string }>
    }
    expect(listed.backups.map((b) => [b.files, b.cause])).toEqual([
      [1, "pull of revision r4"],
      [1, "pull of revision r3"]
    ])
    expect(readdirSync(join(p, ".agentsync/backups")).length).toBe(2)
    const restored = await run(["files", "restore", listed.backups[1]!.id], p, env)
    expect(restored.code, restored.stderr).toBe(0)
    expect(readFileSync(join(p, "services/config/app.yaml"), "utf8")).toBe("version: 2\n")
    const unknown = await run(["files", "restore", "nope"], p, env)
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/no backup "nope"/)])
  })
})
