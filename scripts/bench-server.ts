// The tenant server's no-change check beside a bare handler: `npm run bench:server`. `agentsync serve` over a real
// PostgreSQL (scripts/pg.mjs) answers `GET /api/v1/sync/files/manifest` with If-None-Match of the head (304), and a
// bare Node handler (node:http and pg, no framework) answers the same request from the same database with the
// same queries: the token looked up and its hash compared, the tenant's head read. Load from wrk
// (`apt-get install wrk`) on loopback, the two servers alternating; medians of requests/s over the rounds and the
// ratio, and the server process's CPU per answer (the figure a loaded machine disturbs least).
//
//   npm run bench:server [-- --rounds N] [--seconds N] [--connections N] [--before path/to/dist/bin.js]
//   npm run bench:server -- --concurrent 20 [--files 1000] [--rounds N] [--before path/to/dist/bin.js]
//   npm run bench:server -- --compression [--files 10000] [--mib 100] [--rounds N]
//   npm run bench:server -- --transfer [--files 10000] [--mib 100] [--rounds N] [--before path/to/dist/bin.js]
//   npm run bench:server -- --onefile [--files 10000] [--mib 100] [--rounds N] [--before path/to/dist/bin.js]
//
// `--before` also measures an earlier build's server (its own database) in the same rounds. `--concurrent N` measures
// instead N clients each pushing one changed file into its own tenant at once: every tenant holds a settled tree of
// `--files` files; the wall time until the last push ends, the clients' CPU summed, the server's CPU, and one push
// alone beside them (what one client costs), and the floor measured in the same rounds (scripts/bench-floor.ts): N
// plain readdirSync/lstatSync walks of the tenants' trees at once with the same node, one alone, Node's start alone,
// and each server's ratio to them. `--compression` measures instead the archive formats on the bench corpus
// (the files' tar records, batched as both sides batch them, through the same writer and strict reader): bytes, and
// the CPU to compress and to read back, for gzip 1 and 6 and, where this Node has zstd, zstd 1, 3 and 6.
// `--transfer` measures instead a first full upload and a full download of the bench corpus through each server (each
// build with a PostgreSQL of its own, alternating): the server's CPU and its PostgreSQL's, the figures the client
// does not move (the same client, this build's, drives both). The no-change check also prints PostgreSQL's CPU per
// answer, and a second bare handler that runs the statement prepared (named), as the server does. `--onefile` measures
// instead one-file pushes into a tenant of `--files` files, one server per build (each with a PostgreSQL of its own),
// alternating: the access log's `duration_ms` of each push's POST, the server's CPU and its PostgreSQL's per push.
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Chunk, Effect, Stream } from "effect"
import { FORMATS } from "../src/domain/caps.js"
import { TOKEN_CHECK } from "../src/server/tenants.js"
import {
  type Compression,
  compress,
  END_OF_ARCHIVE,
  fileRecord,
  readArchive,
  tarOf
} from "../src/stages/files/archive.js"
import { nodeStart, timedAsync, times, walkScript } from "./bench-floor.js"
import {
  freePort,
  generate,
  listFiles,
  median,
  pgBinDir,
  procCpu,
  startPostgres,
  type Timed,
  timed
} from "./bench-tree.js"
import { buildIfStale } from "./built.js"

const REPO = join(import.meta.dirname, "..")
const BIN = join(REPO, "dist/bin.js")

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "10" },
    before: { type: "string" },
    concurrent: { type: "string" },
    files: { type: "string" },
    mib: { type: "string", default: "100" },
    compression: { type: "boolean", default: false },
    transfer: { type: "boolean", default: false },
    onefile: { type: "boolean", default: false }
  }
})

/**
 * `agentsync serve` with its access log read and dropped (a reader that keeps it all, or scans it, would be what
 * limits the rate: the server waits on a full pipe); with `onLog`, the log (stderr) is handed to it as it comes (for
 * runs of a request a second, not for wrk).
 */
const startServe = (env: Record<string, string>, cwd: string, bin = BIN, onLog?: (chunk: string) => void) =>
  new Promise<{ url: string; child: ChildProcess }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "serve", "--port", "0"], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let head = ""
    child.stderr.on("data", (d) => {
      onLog?.(String(d))
      if (head.length > 65536) return
      head += d
      const m = /listening on (http:\/\/\S+)/.exec(head)
      if (m) {
        head = " ".repeat(65537)
        resolve({ url: m[1]!, child })
      }
    })
    child.on("exit", (code) => reject(new Error(`serve exited ${code}: ${head}`)))
  })

/**
 * The bare handler: the server's token check (the same statement, `TOKEN_CHECK` in src/server/tenants.ts: the token's
 * row and its tenant's head; its hash compared), answered 304, on a pool of the same size as the check's.
 */
const BARE = `
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import pg from "pg"
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 8 })
const sha = (s) => createHash("sha256").update(s).digest()
const text = ${JSON.stringify(TOKEN_CHECK.text)}
const name = process.env.PREPARED === "1" ? "token-check" : undefined
createServer(async (req, res) => {
  try {
    const m = /^Bearer ast_([0-9a-f]{16})_(\\S+)$/.exec(req.headers.authorization ?? "")
    const { rows } = await pool.query({ name, text, values: [m?.[1] ?? "", 60] })
    const row = rows[0]
    const presented = sha(m?.[2] ?? "")
    if (!row || !timingSafeEqual(Buffer.from(row.secret_sha256), presented)) { res.writeHead(401).end(); return }
    const tag = '"' + row.head + '"'
    if (req.headers["if-none-match"] === tag) res.writeHead(304, { etag: tag }).end()
    else res.writeHead(200).end("{}")
  } catch (e) { res.writeHead(500).end(String(e)) }
}).listen(Number(process.env.PORT), "127.0.0.1", () => console.error("listening"))
`

/** The bare handler listening on a free port; `prepared` runs the statement named (prepared once a connection). */
const startBare = async (databaseUrl: string, prepared: boolean) => {
  const port = await freePort()
  const child = spawn(process.execPath, ["--input-type=module", "-e", BARE], {
    cwd: REPO,
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), PREPARED: prepared ? "1" : "0" },
    stdio: ["ignore", "ignore", "pipe"]
  })
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => (String(d).includes("listening") ? resolve() : reject(new Error(String(d)))))
  })
  return { child, url: `http://127.0.0.1:${port}` }
}

/**
 * This build's CLI, or `bin`'s: a tenant is created by its server's own build, as its operator would (a newer CLI
 * migrates the database to a storage an older server's pushes are refused by).
 */
const cli = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string>, bin = BIN) => {
  const r = spawnSync(process.execPath, [bin, "--json", ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: "utf8"
  })
  if (r.status !== 0) throw new Error(`agentsync ${args.join(" ")}: ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

/** A tenant with one pushed revision: its token and head. */
const tenantWithHead = (work: string, databaseUrl: string, serverUrl: string, name: string, bin = BIN) => {
  const t = cli(["tenant", "create", name], work, { DATABASE_URL: databaseUrl }, bin) as { token: string }
  const root = join(work, name)
  mkdirSync(join(root, "services", "content"), { recursive: true })
  writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
  writeFileSync(join(root, "services", "content", "a.md"), `# ${name}\n`)
  const pushed = cli(["files", "push"], root, { AGENTSYNC_DIRECT_URL: serverUrl, AGENTSYNC_TOKEN: t.token })
  return { root, token: t.token, head: pushed.revision as string }
}

/**
 * CPU seconds a PostgreSQL cluster has used so far: its postmaster's (with the backends that have ended, reaped) and
 * every live child's (backends, autovacuum, the writers). Found by the port its command line names.
 */
const pgCpu = (port: number): number => {
  const procs = readdirSync("/proc").filter((d) => /^\d+$/.test(d))
  const stat = (pid: string) => {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, "utf8")
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ")
      return { ppid: f[1]!, own: (Number(f[11]) + Number(f[12])) / 100, reaped: (Number(f[13]) + Number(f[14])) / 100 }
    } catch {
      return undefined
    }
  }
  const postmaster = procs.find((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
      return argv.some((a) => a.endsWith("/postgres")) && argv.includes(String(port))
    } catch {
      return false
    }
  })
  if (postmaster === undefined) throw new Error(`no PostgreSQL on port ${port}`)
  let total = 0
  for (const pid of procs) {
    const s = stat(pid)
    if (s === undefined) continue
    if (pid === postmaster) total += s.own + s.reaped
    else if (s.ppid === postmaster) total += s.own
  }
  return total
}

const portOf = (url: string) => Number(new URL(url).port)

interface Rate {
  readonly perSecond: number
  /** The server process's CPU milliseconds per answer (PostgreSQL's not counted): robust to a loaded machine. */
  readonly cpuMs: number
  /** PostgreSQL's CPU milliseconds per answer (the whole cluster, over the same span). */
  readonly pgMs: number
}

/** What wrk reached against the server `pid`, refusing a run where any answer was not the 304. */
const wrk = (url: string, token: string, head: string, pid: number, pgPort: number) =>
  new Promise<Rate>((resolve, reject) => {
    const cpu = procCpu(pid)
    const pgStart = pgCpu(pgPort)
    const child = spawn(
      "wrk",
      [
        "-t1",
        `-c${flags.connections}`,
        `-d${flags.seconds}s`,
        "-H",
        `authorization: Bearer ${token}`,
        "-H",
        `if-none-match: "${head}"`,
        `${url}/api/v1/sync/files/manifest`
      ],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let out = ""
    child.stdout.on("data", (d) => {
      out += d
    })
    child.on("exit", () => {
      const rate = /Requests\/sec:\s+([\d.]+)/.exec(out)
      const count = /(\d+) requests in/.exec(out)
      if (/Non-2xx or 3xx/.test(out) || rate === null || count === null) reject(new Error(`wrk: ${out}`))
      else
        resolve({
          perSecond: Number(rate[1]),
          cpuMs: ((procCpu(pid) - cpu) * 1000) / Number(count[1]),
          pgMs: ((pgCpu(pgPort) - pgStart) * 1000) / Number(count[1])
        })
    })
  })

/** A push run under /usr/bin/time, asynchronously: wall and CPU seconds (the command and its children). */
const timedPush = (bin: string, cwd: string, env: Record<string, string>) =>
  timedAsync([bin, "files", "push"], cwd, env)

/** `count` tenants on a server, each with a settled tree of `files` files (mtimes in the past, so cached). */
const settledTenants = (
  work: string,
  databaseUrl: string,
  serverUrl: string,
  prefix: string,
  count: number,
  files: number,
  bin: string
) =>
  Array.from({ length: count }, (_, i) => {
    const name = `${prefix}-${i}`
    const t = cli(["tenant", "create", name], work, { DATABASE_URL: databaseUrl }, bin) as { token: string }
    const root = join(work, name)
    generate(root, files, files * 1000)
    writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
    const past = new Date(Date.now() - 60_000)
    for (const f of listFiles(join(root, "services"))) utimesSync(join(root, "services", f), past, past)
    const env = { AGENTSYNC_DIRECT_URL: serverUrl, AGENTSYNC_TOKEN: t.token }
    timed(process.execPath, [bin, "files", "push"], { cwd: root, env })
    // Settled: the next push of an unchanged tree stops at the mark (a push again only if the first kept none).
    if (!existsSync(join(root, ".agentsync", "files-settled.json")))
      timed(process.execPath, [bin, "files", "push"], { cwd: root, env })
    return { root, env, changed: join(root, "services", listFiles(join(root, "services"))[i % files]!) }
  })

/** N one-file pushes at once, each into its own tenant, against each server in turn; then one alone. */
const concurrentPushes = async (
  count: number,
  work: string,
  servers: ReadonlyArray<{ name: string; url: string; pid: number; databaseUrl: string; bin: string }>
) => {
  const files = Number(flags.files ?? 1000)
  const tenants = servers.map((s, j) => settledTenants(work, s.databaseUrl, s.url, `c${j}`, count, files, s.bin))
  console.log(
    `agentsync server: ${count} concurrent one-file pushes — ${new Date().toISOString()}, node ${process.version}, ${count} tenants × ${files} files settled, ${flags.rounds} rounds, alternating; loopback`
  )
  type Sample = { wall: number; clientCpu: number; serverCpu: number; alone: number; aloneCpu: number }
  const samples = servers.map(() => [] as Array<Sample>)
  // The floor in the same rounds (see bench-floor.ts): N plain walks of the tenants' trees at once, then one alone,
  // and Node's start alone.
  const walker = walkScript(work)
  const floor: Array<Sample> = []
  const starts: Array<Timed> = []
  // The first server's tenants are walked (every server's trees are alike).
  const walked = tenants[0] ?? []
  const lone = walked[0]
  if (lone === undefined) throw new Error("no tenant to walk for the floor")
  for (let round = 0; round < Number(flags.rounds); round++) {
    {
      const started = performance.now()
      const runs = await Promise.all(walked.map((t) => timedAsync([walker, join(t.root, "services")], t.root)))
      const wall = (performance.now() - started) / 1000
      const alone = await timedAsync([walker, join(lone.root, "services")], work)
      const clientCpu = runs.reduce((n, r) => n + r.cpu, 0)
      floor.push({ wall, clientCpu, serverCpu: 0, alone: alone.seconds, aloneCpu: alone.cpu })
      starts.push(nodeStart(work))
      console.error(
        `round ${round + 1}, floor: ${count} walks at once ${wall.toFixed(2)} s, ${clientCpu.toFixed(2)} s CPU; one alone ${alone.seconds.toFixed(2)} s (${alone.cpu.toFixed(2)} s CPU)`
      )
    }
    for (const [j, s] of servers.entries()) {
      for (const t of tenants[j]!) writeFileSync(t.changed, `changed in round ${round}\n`, { flag: "a" })
      const cpu = procCpu(s.pid)
      const started = performance.now()
      const runs = await Promise.all(tenants[j]!.map((t) => timedPush(s.bin, t.root, t.env)))
      const wall = (performance.now() - started) / 1000
      const serverCpu = procCpu(s.pid) - cpu
      const one = tenants[j]![0]!
      writeFileSync(one.changed, `alone in round ${round}\n`, { flag: "a" })
      const alone = await timedPush(s.bin, one.root, one.env)
      const clientCpu = runs.reduce((n, r) => n + r.cpu, 0)
      samples[j]!.push({ wall, clientCpu, serverCpu, alone: alone.seconds, aloneCpu: alone.cpu })
      console.error(
        `round ${round + 1}, ${s.name}: ${wall.toFixed(2)} s, clients ${clientCpu.toFixed(2)} s CPU, server ${serverCpu.toFixed(2)} s CPU; one alone ${alone.seconds.toFixed(2)} s (${alone.cpu.toFixed(2)} s CPU)`
      )
    }
  }
  console.log(
    `| server | ${count} pushes at once, wall | clients' CPU, sum | server CPU | per push: client CPU | per push: server CPU | one push alone, wall (CPU) |\n| --- | --- | --- | --- | --- | --- | --- |`
  )
  for (const [j, s] of servers.entries()) {
    const m = (f: (x: Sample) => number) => median(samples[j]!.map(f))
    console.log(
      `| ${s.name} | ${m((x) => x.wall).toFixed(2)} s | ${m((x) => x.clientCpu).toFixed(2)} s | ${m((x) => x.serverCpu).toFixed(2)} s | ${(m((x) => x.clientCpu) / count).toFixed(3)} s | ${((m((x) => x.serverCpu) / count) * 1000).toFixed(0)} ms | ${m((x) => x.alone).toFixed(2)} s (${m((x) => x.aloneCpu).toFixed(2)} s) |`
    )
  }
  const f = (g: (x: Sample) => number) => median(floor.map(g))
  console.log(
    `| floor: ${count} plain walks at once (node + readdirSync/lstatSync of each tenant's tree) | ${f((x) => x.wall).toFixed(2)} s | ${f((x) => x.clientCpu).toFixed(2)} s | — | ${(f((x) => x.clientCpu) / count).toFixed(3)} s | — | ${f((x) => x.alone).toFixed(2)} s (${f((x) => x.aloneCpu).toFixed(2)} s) |`
  )
  const startCpu = median(starts.map((x) => x.cpu))
  console.log(
    `\nnode start alone: ${median(starts.map((x) => x.seconds)).toFixed(2)} s (${startCpu.toFixed(2)} s CPU), ${count} of them ${(startCpu * count).toFixed(2)} s CPU`
  )
  for (const [j, s] of servers.entries()) {
    const m = (g: (x: Sample) => number) => median((samples[j] ?? []).map(g))
    const wall = times(
      m((x) => x.wall),
      f((x) => x.wall)
    )
    const cpu = times(
      m((x) => x.clientCpu),
      f((x) => x.clientCpu)
    )
    const both = times(
      m((x) => x.clientCpu + x.serverCpu),
      f((x) => x.clientCpu)
    )
    const alone = `${times(
      m((x) => x.alone),
      f((x) => x.alone)
    )} wall, ${times(
      m((x) => x.aloneCpu),
      f((x) => x.aloneCpu)
    )} CPU`
    console.log(
      `${s.name} ÷ the floor: ${count} at once ${wall} wall, ${cpu} clients' CPU, ${both} clients' and server's CPU; one alone ${alone}`
    )
  }
}

/** The corpus's tar records in batches of about 1 MiB (as the client's bundle and the server's download cut them). */
const corpusBatches = (root: string) => {
  const batches: Array<Uint8Array> = []
  let batch: Array<Buffer> = []
  let bytes = 0
  for (const path of listFiles(join(root, "services"))) {
    const data = readFileSync(join(root, "services", path))
    batch.push(fileRecord(path, data))
    bytes += data.length
    if (bytes >= 1024 * 1024) {
      batches.push(Buffer.concat(batch))
      batch = []
      bytes = 0
    }
  }
  if (batch.length > 0) batches.push(Buffer.concat(batch))
  return batches
}

/** Bytes, and CPU seconds (the whole process: zlib's thread pool included) to write and to read back, per format. */
const compressionFigures = async () => {
  const files = Number(flags.files ?? 10_000)
  const work = mkdtempSync(join(tmpdir(), "agentsync-bench-compression-"))
  try {
    generate(work, files, Number(flags.mib) * 1024 * 1024)
    const batches = corpusBatches(work)
    const raw = batches.reduce((n, b) => n + b.length, 0) + END_OF_ARCHIVE.length
    const cases: Array<Compression> = [
      { format: "gzip", level: 0 },
      { format: "gzip", level: 1 },
      { format: "gzip", level: 6 },
      ...(FORMATS.includes("zstd") ? [1, 3, 6].map((level): Compression => ({ format: "zstd", level })) : [])
    ]
    console.log(
      `agentsync archives: ${files} files, ${(raw / 1024 / 1024).toFixed(1)} MiB of tar — ${new Date().toISOString()}, node ${process.version}, ${flags.rounds} rounds, medians`
    )
    const cpu = async (f: () => Promise<unknown>) => {
      const start = process.cpuUsage()
      await f()
      const used = process.cpuUsage(start)
      return (used.user + used.system) / 1e6
    }
    const rows: Array<{ name: string; bytes: number; write: number; read: number }> = []
    for (const c of cases) {
      const writes: Array<number> = []
      const reads: Array<number> = []
      let archive = Buffer.alloc(0)
      for (let round = 0; round < Number(flags.rounds); round++) {
        writes.push(
          await cpu(async () => {
            const out = await Effect.runPromise(Stream.runCollect(compress(tarOf(Stream.fromIterable(batches)), c)))
            archive = Buffer.concat(Chunk.toReadonlyArray(out))
          })
        )
        const sink = { write: () => undefined, end: () => undefined }
        reads.push(await cpu(() => Effect.runPromise(readArchive(Stream.make(archive), { file: () => sink }))))
      }
      rows.push({ name: `${c.format} ${c.level}`, bytes: archive.length, write: median(writes), read: median(reads) })
      console.error(
        `${c.format} ${c.level}: ${archive.length} bytes, write ${median(writes).toFixed(2)} s, read ${median(reads).toFixed(2)} s`
      )
    }
    console.log("| format, level | bytes | ÷ tar | CPU to write | CPU to read back |\n| --- | --- | --- | --- | --- |")
    for (const r of rows) {
      console.log(
        `| ${r.name} | ${(r.bytes / 1024 / 1024).toFixed(1)} MiB | ${(r.bytes / raw).toFixed(3)} | ${r.write.toFixed(2)} s | ${r.read.toFixed(2)} s |`
      )
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** The bench corpus (`--files`, `--mib`) in `source` of a work folder, the builds measured, and what to stop at the end. */
interface Corpus {
  readonly work: string
  readonly source: string
  readonly files: number
  readonly builds: ReadonlyArray<{ readonly name: string; readonly bin: string }>
  readonly stops: Array<() => void>
}

/** Runs `body` over a fresh corpus; every stop it registered runs after it, last first, and the work folder goes. */
const withCorpus = async (prefix: string, body: (corpus: Corpus) => Promise<void>) => {
  const files = Number(flags.files ?? 10_000)
  const work = mkdtempSync(join(tmpdir(), prefix))
  const stops: Array<() => void> = []
  try {
    const source = join(work, "source")
    generate(source, files, Number(flags.mib) * 1024 * 1024)
    writeFileSync(join(source, "agentsync.yaml"), "services: services\n")
    const builds = [
      { name: "agentsync serve", bin: BIN },
      ...(flags.before ? [{ name: "before", bin: flags.before }] : [])
    ]
    await body({ work, source, files, builds, stops })
  } finally {
    for (const stop of stops.reverse()) stop()
    rmSync(work, { recursive: true, force: true })
  }
}

/**
 * A first full upload and a full download of the bench corpus through each build's server, each over a PostgreSQL of
 * its own, alternating: the server's CPU and its PostgreSQL's over each, with this build's client driving both.
 */
const transferFigures = () =>
  withCorpus("agentsync-bench-transfer-", async ({ work, source, files, builds, stops }) => {
    const servers = []
    for (const b of builds) {
      const pg = await startPostgres()
      stops.push(pg.stop)
      const server = await startServe({ DATABASE_URL: pg.url }, work, b.bin)
      stops.push(() => server.child.kill("SIGTERM"))
      servers.push({ ...b, pg, server })
    }
    console.log(
      `agentsync server: first full upload and full download — ${new Date().toISOString()}, node ${process.version}, ${files} files / ${flags.mib} MiB, ${flags.rounds} rounds, alternating; loopback`
    )
    type Sample = { up: number; upServer: number; upPg: number; down: number; downServer: number; downPg: number }
    const samples = servers.map(() => [] as Array<Sample>)
    for (let round = 0; round < Number(flags.rounds); round++) {
      for (const [j, s] of servers.entries()) {
        const t = cli(["tenant", "create", `transfer-${round}`], work, { DATABASE_URL: s.pg.url }, s.bin) as {
          token: string
        }
        const env = { AGENTSYNC_DIRECT_URL: s.server.url, AGENTSYNC_TOKEN: t.token }
        rmSync(join(source, ".agentsync"), { recursive: true, force: true })
        const pgPort = portOf(s.pg.url)
        const measure = (run: () => Timed) => {
          const [server, pg] = [procCpu(s.server.child.pid!), pgCpu(pgPort)]
          const r = run()
          return { wall: r.seconds, server: procCpu(s.server.child.pid!) - server, pg: pgCpu(pgPort) - pg }
        }
        const up = measure(() => timed(process.execPath, [BIN, "files", "push"], { cwd: source, env }))
        const into = join(work, `pull-${j}-${round}`)
        mkdirSync(join(into, "services"), { recursive: true })
        writeFileSync(join(into, "agentsync.yaml"), "services: services\n")
        const down = measure(() => timed(process.execPath, [BIN, "files", "pull"], { cwd: into, env }))
        if (listFiles(join(into, "services")).length !== files) throw new Error(`${s.name}: the pull is incomplete`)
        rmSync(into, { recursive: true, force: true })
        const x = {
          up: up.wall,
          upServer: up.server,
          upPg: up.pg,
          down: down.wall,
          downServer: down.server,
          downPg: down.pg
        }
        samples[j]!.push(x)
        console.error(
          `round ${round + 1}, ${s.name}: upload ${x.up.toFixed(2)} s (server ${x.upServer.toFixed(2)} s, PostgreSQL ${x.upPg.toFixed(2)} s CPU); download ${x.down.toFixed(2)} s (server ${x.downServer.toFixed(2)} s, PostgreSQL ${x.downPg.toFixed(2)} s CPU)`
        )
      }
    }
    console.log(
      "| server | upload, wall | server CPU | PostgreSQL CPU | both | download, wall | server CPU | PostgreSQL CPU |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for (const [j, s] of servers.entries()) {
      const m = (f: (x: Sample) => number) => median(samples[j]!.map(f)).toFixed(2)
      console.log(
        `| ${s.name} | ${m((x) => x.up)} s | ${m((x) => x.upServer)} s | ${m((x) => x.upPg)} s | ${m((x) => x.upServer + x.upPg)} s | ${m((x) => x.down)} s | ${m((x) => x.downServer)} s | ${m((x) => x.downPg)} s |`
      )
    }
  })

/**
 * One-file pushes into a tenant of `--files` files through each build's server (each over a PostgreSQL of its own),
 * alternating, this build's client driving both: the POST's `duration_ms` from the access log (its lines read as
 * they come: a push a second is no load for the reader), and the server's and PostgreSQL's CPU over each push.
 */
const oneFilePushes = () =>
  withCorpus("agentsync-bench-onefile-", async ({ work, source, files, builds, stops }) => {
    const servers = []
    for (const [j, b] of builds.entries()) {
      const pg = await startPostgres()
      stops.push(pg.stop)
      const posts: Array<number> = []
      let pending = ""
      const server = await startServe({ DATABASE_URL: pg.url }, work, b.bin, (chunk) => {
        const lines = (pending + chunk).split("\n")
        pending = lines.pop() ?? ""
        for (const line of lines) {
          const m = /"method":"POST","route":"\/api\/v1\/sync\/files".*"duration_ms":([\d.]+)/.exec(line)
          if (m) posts.push(Number(m[1]))
        }
      })
      stops.push(() => server.child.kill("SIGTERM"))
      const t = cli(["tenant", "create", `onefile-${j}`], work, { DATABASE_URL: pg.url }, b.bin) as { token: string }
      const root = join(work, `tree-${j}`)
      cpSync(source, root, { recursive: true })
      const env = { AGENTSYNC_DIRECT_URL: server.url, AGENTSYNC_TOKEN: t.token }
      timed(process.execPath, [BIN, "files", "push"], { cwd: root, env })
      const changed = join(root, "services", listFiles(join(root, "services"))[0]!)
      servers.push({ ...b, pg, server, posts, env, root, changed })
    }
    console.log(
      `agentsync server: one-file pushes — ${new Date().toISOString()}, node ${process.version}, ${files} files / ${flags.mib} MiB, ${flags.rounds} rounds, alternating; loopback`
    )
    type Sample = { post: number; server: number; pg: number; wall: number }
    const samples = servers.map(() => [] as Array<Sample>)
    for (let round = 0; round < Number(flags.rounds); round++) {
      for (const [j, s] of servers.entries()) {
        writeFileSync(s.changed, `changed in round ${round}\n`, { flag: "a" })
        const pgPort = portOf(s.pg.url)
        const [server, pg] = [procCpu(s.server.child.pid!), pgCpu(pgPort)]
        const r = timed(process.execPath, [BIN, "files", "push"], { cwd: s.root, env: s.env })
        // The access log's line is written as the answer ends: wait for it.
        for (let i = 0; i < 50 && s.posts.length < round + 2; i++) await new Promise((ok) => setTimeout(ok, 20))
        const x = {
          post: s.posts.at(-1) ?? Number.NaN,
          server: (procCpu(s.server.child.pid!) - server) * 1000,
          pg: (pgCpu(pgPort) - pg) * 1000,
          wall: r.seconds
        }
        samples[j]!.push(x)
        console.error(
          `round ${round + 1}, ${s.name}: POST ${x.post} ms, server ${x.server.toFixed(0)} ms CPU, PostgreSQL ${x.pg.toFixed(0)} ms CPU; push ${x.wall.toFixed(2)} s`
        )
      }
    }
    console.log(
      "| server | POST duration_ms, median (range) | server CPU a push | PostgreSQL CPU a push | push, wall |\n| --- | --- | --- | --- | --- |"
    )
    for (const [j, s] of servers.entries()) {
      const xs = samples[j]!
      const m = (f: (x: Sample) => number) => median(xs.map(f))
      const posts = xs.map((x) => x.post)
      console.log(
        `| ${s.name} | ${m((x) => x.post).toFixed(1)} ms (${Math.min(...posts)}–${Math.max(...posts)}) | ${m((x) => x.server).toFixed(0)} ms | ${m((x) => x.pg).toFixed(0)} ms | ${m((x) => x.wall).toFixed(2)} s |`
      )
    }
  })

const main = async () => {
  if (flags.compression) return await compressionFigures()
  if (!flags.transfer && !flags.onefile && spawnSync("sh", ["-c", "command -v wrk"]).status !== 0)
    throw new Error("wrk is not installed (apt-get install wrk)")
  buildIfStale(REPO)
  if (flags.transfer) return await transferFigures()
  if (flags.onefile) return await oneFilePushes()
  const pg = await startPostgres()
  const work = mkdtempSync(join(tmpdir(), "agentsync-bench-server-"))
  const children: Array<ChildProcess> = []
  try {
    const server = await startServe({ DATABASE_URL: pg.url }, work)
    children.push(server.child)
    const bare = await startBare(pg.url, false)
    children.push(bare.child)
    const barePrepared = await startBare(pg.url, true)
    children.push(barePrepared.child)
    let beforeServer: { readonly url: string; readonly pid: number; readonly databaseUrl: string } | undefined
    if (flags.before !== undefined) {
      const db = pg.url.replace(/\/[^/]*$/, "/bench_before")
      spawnSync(join(pgBinDir(), "psql"), [pg.url, "-qc", "CREATE DATABASE bench_before"])
      const old = await startServe({ DATABASE_URL: db }, work, flags.before)
      children.push(old.child)
      beforeServer = { url: old.url, pid: old.child.pid!, databaseUrl: db }
    }
    if (flags.concurrent !== undefined) {
      return await concurrentPushes(Number(flags.concurrent), work, [
        { name: "agentsync serve", url: server.url, pid: server.child.pid!, databaseUrl: pg.url, bin: BIN },
        ...(beforeServer === undefined
          ? []
          : [{ name: "agentsync serve, before", ...beforeServer, bin: flags.before! }])
      ])
    }
    const t = tenantWithHead(work, pg.url, server.url, "checks")
    const before =
      beforeServer === undefined
        ? undefined
        : {
            ...beforeServer,
            ...tenantWithHead(work, beforeServer.databaseUrl, beforeServer.url, "before", flags.before)
          }
    console.log(
      `agentsync server: no-change checks — ${new Date().toISOString()}, node ${process.version}, wrk -c${flags.connections} ${flags.seconds} s × ${flags.rounds} rounds, alternating; loopback`
    )
    const servers = [
      { name: "bare handler (node:http + pg, same statement)", url: bare.url, pid: bare.child.pid!, ...t },
      { name: "bare handler, the statement prepared", url: barePrepared.url, pid: barePrepared.child.pid!, ...t },
      { name: "agentsync serve", url: server.url, pid: server.child.pid!, ...t },
      ...(before === undefined ? [] : [{ name: "agentsync serve, before", ...before }])
    ]
    const rates = servers.map(() => [] as Array<Rate>)
    for (let i = 0; i < Number(flags.rounds); i++) {
      for (const [j, x] of servers.entries()) rates[j]!.push(await wrk(x.url, x.token, x.head, x.pid, portOf(pg.url)))
      console.error(
        `round ${i + 1}: ${servers.map((x, j) => `${x.name} ${rates[j]!.at(-1)!.perSecond.toFixed(0)}/s, ${rates[j]!.at(-1)!.cpuMs.toFixed(2)} ms CPU, PostgreSQL ${rates[j]!.at(-1)!.pgMs.toFixed(2)} ms`).join("; ")}`
      )
    }
    const bareRate = median(rates[0]!.map((r) => r.perSecond))
    const preparedRate = median(rates[1]!.map((r) => r.perSecond))
    const bareCpu = median(rates[0]!.map((r) => r.cpuMs))
    console.log(
      "| server | 304s per second | ÷ bare | ÷ bare, prepared | server CPU per 304 | bare ÷ this (CPU) | PostgreSQL CPU per 304 |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for (const [j, x] of servers.entries()) {
      const r = median(rates[j]!.map((y) => y.perSecond))
      const c = median(rates[j]!.map((y) => y.cpuMs))
      const g = median(rates[j]!.map((y) => y.pgMs))
      console.log(
        `| ${x.name} | ${r.toFixed(0)} | ${((r / bareRate) * 100).toFixed(0)}% | ${((r / preparedRate) * 100).toFixed(0)}% | ${c.toFixed(2)} ms | ${((bareCpu / c) * 100).toFixed(0)}% | ${g.toFixed(2)} ms |`
      )
    }
  } finally {
    for (const c of children) c.kill("SIGTERM")
    pg.stop()
    rmSync(work, { recursive: true, force: true })
  }
}

await main()
