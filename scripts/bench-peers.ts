// File sync beside the tools its users would otherwise pick: `npm run bench:peers`. Every tool runs on loopback
// with its server side local — `agentsync serve` over a real PostgreSQL (scripts/pg.mjs), the rsync daemon, the
// unison socket server, `rclone serve sftp` — on one generated tree (10,000 files / 100 MiB of text by default).
// Cases: first full upload, no-change run, one file changed, 100 files changed, full download into an empty folder.
// Each round runs every case for every installed tool, the tools' order rotating between rounds; the figures are
// medians over the rounds: wall seconds and the client's CPU seconds, and agentsync's ratio to the best peer.
//
//   npm run bench:peers [-- --rounds N] [--files N --mib N] [--large] [--only agentsync,rsync,…] [--before BIN]
//
// `--large` adds a tree of 100,000 files (first upload, no-change run and full download rows). `--before` names
// the `dist/bin.js` of an earlier build, measured in the same rounds as "before" (its own server and database),
// with this build's ratio to it. Tools not installed are left out. Under the table, the floor of the no-change and
// one-file rows, sampled in the same rounds with the same node (scripts/bench-floor.ts): Node's start alone, and Node
// plus a plain readdirSync/lstatSync walk of the same tree, with each run's ratio to them.
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { makeMembership } from "../src/domain/membership.js"
import { walkTree } from "../src/services/state.js"
import { checkSettled, listingDigest } from "../src/stages/files/settledCheck.js"
import { startServe } from "../test/support/cli.js"
import { nodeStart, plainWalk, times, walkScript } from "./bench-floor.js"
import {
  freePort,
  generate,
  listFiles,
  median,
  type Pg,
  pgBinDir,
  procCpu,
  startPostgres,
  type Timed,
  timed
} from "./bench-tree.js"

const REPO = join(import.meta.dirname, "..")
const BIN = join(REPO, "dist/bin.js")
const TIMEOUT_MS = 600_000

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    files: { type: "string", default: "10000" },
    mib: { type: "string", default: "100" },
    large: { type: "boolean", default: false },
    before: { type: "string" },
    only: { type: "string" }
  }
})

const CASES = ["first full upload", "no-change run", "one file changed", "100 files changed", "full download"] as const
type Case = (typeof CASES)[number]

/** One tool: a server started once, and per round a fresh remote side and a client tree at `client`. */
interface Peer {
  readonly name: string
  /** Makes the remote side empty and forgets any client state (caches, archives) kept for it. */
  readonly reset: (round: number, client: string) => Promise<void>
  readonly upload: (round: number, client: string) => Timed
  /** Downloads the whole remote tree into `into` (an empty folder: the tree goes in `into/services`). */
  readonly download: (round: number, into: string) => Timed
  /** CPU seconds the server side has used so far (itself and its reaped children). */
  readonly serverCpu: () => number
  /** agentsync's: the environment its client runs with in a round. */
  readonly env?: (round: number) => Record<string, string>
  readonly stop: () => void
}

const installed = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0

const waitPort = async (port: number, child: ChildProcess) => {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1")
      s.on("connect", () => {
        s.destroy()
        resolve(true)
      })
      s.on("error", () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nothing listens on port ${port}`)
}

const daemon = (cmd: string, args: ReadonlyArray<string>, cwd: string) =>
  spawn(cmd, args, { cwd, stdio: ["ignore", "ignore", "inherit"], env: process.env })

const agentsyncPeer = async (work: string, databaseUrl: string, bin = BIN, name = "agentsync"): Promise<Peer> => {
  const server = await startServe({ DATABASE_URL: databaseUrl }, work, bin)
  const tokens = new Map<number, string>()
  const cli = (cwd: string, round: number, command: string) =>
    timed(process.execPath, [bin, "--json", "files", command], {
      cwd,
      env: { AGENTSYNC_DIRECT_URL: server.url, AGENTSYNC_TOKEN: tokens.get(round)! },
      timeoutMs: TIMEOUT_MS
    })
  return {
    name,
    reset: async (round, client) => {
      const r = spawnSync(process.execPath, [bin, "--json", "tenant", "create", `peers-${round}-${Date.now()}`], {
        cwd: work,
        env: { ...process.env, DATABASE_URL: databaseUrl },
        encoding: "utf8"
      })
      if (r.status !== 0) throw new Error(r.stderr)
      tokens.set(round, (JSON.parse(r.stdout) as { token: string }).token)
      rmSync(join(client, ".agentsync"), { recursive: true, force: true })
    },
    upload: (round, client) => cli(client, round, "push"),
    download: (round, into) => {
      mkdirSync(join(into, "services"), { recursive: true })
      writeFileSync(join(into, "agentsync.yaml"), "services: services\n")
      return cli(into, round, "pull")
    },
    serverCpu: () => procCpu(server.child.pid!),
    env: (round) => ({ AGENTSYNC_DIRECT_URL: server.url, AGENTSYNC_TOKEN: tokens.get(round)! }),
    stop: () => server.child.kill("SIGTERM")
  }
}

const rsyncPeer = async (work: string): Promise<Peer> => {
  const root = join(work, "rsyncd")
  mkdirSync(root)
  const port = await freePort()
  const conf = join(work, "rsyncd.conf")
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  writeFileSync(
    conf,
    `use chroot = no\nuid = ${uid}\ngid = ${gid}\npid file = ${join(work, "rsyncd.pid")}\n[bench]\npath = ${root}\nread only = false\n`
  )
  const child = daemon(
    "rsync",
    ["--daemon", "--no-detach", `--port=${port}`, `--config=${conf}`, "--address=127.0.0.1"],
    work
  )
  await waitPort(port, child)
  const url = (round: number) => `rsync://127.0.0.1:${port}/bench/r${round}/`
  return {
    name: "rsync",
    reset: async (round) => {
      mkdirSync(join(root, `r${round}`), { recursive: true })
    },
    upload: (round, client) =>
      timed("rsync", ["-a", "--delete", `${join(client, "services")}/`, url(round)], {
        cwd: work,
        timeoutMs: TIMEOUT_MS
      }),
    download: (round, into) =>
      timed("rsync", ["-a", url(round), `${join(into, "services")}/`], { cwd: work, timeoutMs: TIMEOUT_MS }),
    serverCpu: () => procCpu(child.pid!),
    stop: () => child.kill("SIGTERM")
  }
}

const unisonPeer = async (work: string): Promise<Peer> => {
  const root = join(work, "unison-server")
  mkdirSync(root)
  const port = await freePort()
  const child = daemon("unison", ["-socket", String(port)], work)
  await waitPort(port, child)
  const archives = (round: number) => join(work, `unison-archives-${round}`)
  const run = (round: number, local: string, archive: string) =>
    timed(
      "unison",
      [
        local,
        `socket://127.0.0.1:${port}/${join(root, `r${round}`)}`,
        "-batch",
        "-auto",
        "-silent",
        "-confirmbigdel=false"
      ],
      { cwd: work, env: { UNISON: archive }, timeoutMs: TIMEOUT_MS }
    )
  return {
    name: "unison",
    reset: async (round) => {
      mkdirSync(join(root, `r${round}`), { recursive: true })
      rmSync(archives(round), { recursive: true, force: true })
    },
    upload: (round, client) => run(round, join(client, "services"), archives(round)),
    // A replica never synced before: its own archive, so unison takes every remote file as new.
    download: (round, into) => {
      mkdirSync(join(into, "services"), { recursive: true })
      return run(round, join(into, "services"), join(into, ".unison"))
    },
    serverCpu: () => procCpu(child.pid!),
    stop: () => child.kill("SIGTERM")
  }
}

const rclonePeer = async (work: string): Promise<Peer> => {
  const root = join(work, "rclone-server")
  mkdirSync(root)
  const port = await freePort()
  const child = daemon(
    "rclone",
    ["serve", "sftp", root, "--addr", `127.0.0.1:${port}`, "--user", "u", "--pass", "p"],
    work
  )
  await waitPort(port, child)
  const pass = spawnSync("rclone", ["obscure", "p"], { encoding: "utf8" }).stdout.trim()
  const remote = (round: number) =>
    `:sftp,host=127.0.0.1,port=${port},user=u,pass=${pass},shell_type=unix,md5sum_command=none,sha1sum_command=none:r${round}`
  const env = { RCLONE_CONFIG: join(work, "rclone.conf") }
  return {
    name: "rclone",
    reset: async (round) => {
      mkdirSync(join(root, `r${round}`), { recursive: true })
    },
    upload: (round, client) =>
      timed("rclone", ["sync", "-q", join(client, "services"), remote(round)], {
        cwd: work,
        env,
        timeoutMs: TIMEOUT_MS
      }),
    download: (round, into) =>
      timed("rclone", ["copy", "-q", remote(round), join(into, "services")], { cwd: work, env, timeoutMs: TIMEOUT_MS }),
    serverCpu: () => procCpu(child.pid!),
    stop: () => child.kill("SIGTERM")
  }
}

const treeSize = (dir: string) => {
  const files = listFiles(dir)
  return { files: files.length, bytes: files.reduce((n, p) => n + statSync(join(dir, p)).size, 0) }
}

interface Sample {
  readonly seconds: number
  readonly cpu: number
  /** The client's system CPU (part of `cpu`). */
  readonly sys: number
  readonly serverCpu: number
}

/** CPU seconds of a command, median of five runs. */
const cpuOf = (cmd: string, args: ReadonlyArray<string>, cwd: string, env?: Record<string, string>) =>
  median(Array.from({ length: 5 }, () => timed(cmd, args, { cwd, ...(env === undefined ? {} : { env }) }).cpu))

/**
 * Where a no-change run's CPU goes, each part measured alone: Node's own start, the command line's start
 * (`--version`: the bundle read from the code cache), and listing the tree (in this process, the same code).
 */
/** CPU seconds of `f`, run in this (warm) process. */
const cpuIn = async (f: () => unknown) => {
  const start = process.cpuUsage()
  await f()
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1e6
}

/**
 * Where a no-change run's CPU goes: Node's own start, the launcher and the settled start path loading (with
 * the cold code of the check), and the check itself measured in this warm process (listing, its digest, the
 * rest: mark, project file, the 304 exchange).
 */
const budget = async (peer: Peer, client: string) => {
  await peer.reset(99, client)
  peer.upload(99, client)
  const run = median(Array.from({ length: 5 }, () => peer.upload(99, client).cpu))
  const node = cpuOf(process.execPath, ["-e", "0"], client)
  const env = { ...process.env, ...peer.env!(99) }
  const input = { command: "push", dryRun: false, cwd: client, services: undefined, env } as const
  const times = async (f: () => unknown) => {
    await f()
    const all: Array<number> = []
    for (let i = 0; i < 5; i++) all.push(await cpuIn(f))
    return median(all)
  }
  if ((await checkSettled(input)) === undefined) throw new Error("the no-change run was not settled")
  const check = await times(() => checkSettled(input))
  const files = walkTree(join(client, "services"), makeMembership(""))
  const listing = await times(() => walkTree(join(client, "services"), makeMembership("")))
  const digest = await times(() => listingDigest(files))
  console.log(
    `\nno-change run, CPU (medians of 5): ${run.toFixed(3)} s = node start ${node.toFixed(3)} s + launcher, small bundle and cold code ${(run - node - check).toFixed(3)} s + settled check in a warm process ${check.toFixed(3)} s (listing ${listing.toFixed(3)} s, its digest ${digest.toFixed(3)} s, mark, project file and 304 exchange ${(check - listing - digest).toFixed(3)} s)`
  )
}

// Work folders are removed only when the whole run ends: removing one (160,000 files after a 10,000-file part) just
// before `--large` creates its tree would charge that part's writes with ext4's skip of recently freed inodes.
const works: Array<string> = []

const bench = async (pg: Pg, files: number, mib: number, rounds: number, cases: ReadonlyArray<Case>) => {
  const work = mkdtempSync(join(tmpdir(), "agentsync-bench-peers-"))
  works.push(work)
  const peers: Array<Peer> = []
  try {
    const tree = join(work, "tree")
    generate(tree, files, mib * 1024 * 1024)
    const size = treeSize(join(tree, "services"))
    // A file modified at or after a listing's clock stamp is racy (never vouched for by the hash cache), and a build
    // from before that rule (a --before build) or a tree over several devices uses a 2 s window: a real tree is older.
    await new Promise((r) => setTimeout(r, 2100))
    const only = flags.only?.split(",")
    const wanted = (name: string) => only === undefined || only.includes(name)
    if (wanted("agentsync")) peers.push(await agentsyncPeer(work, pg.url))
    if (flags.before !== undefined) {
      const db = "bench_before"
      spawnSync(join(pgBinDir(), "psql"), [
        pg.url,
        "-qc",
        `DROP DATABASE IF EXISTS ${db}`,
        "-c",
        `CREATE DATABASE ${db}`
      ])
      peers.push(await agentsyncPeer(work, pg.url.replace(/\/[^/]*$/, `/${db}`), flags.before, "before"))
    }
    if (wanted("rsync") && installed("rsync")) peers.push(await rsyncPeer(work))
    if (wanted("unison") && installed("unison")) peers.push(await unisonPeer(work))
    if (wanted("rclone") && installed("rclone")) peers.push(await rclonePeer(work))
    // One client tree per tool, copied with its times, changed as the rounds go.
    for (const p of peers) cpSync(tree, join(work, `client-${p.name}`), { recursive: true, preserveTimestamps: true })
    const samples = new Map<string, Map<Case, Array<Sample | "failed">>>(
      peers.map((p) => [p.name, new Map(CASES.map((c) => [c, []]))])
    )
    // The floor under a no-change or one-file run, sampled in every round beside the cases (see bench-floor.ts).
    const floorCases = (["no-change run", "one file changed"] as const).filter((c) => cases.includes(c))
    const walker = walkScript(work)
    const floor = { start: [] as Array<Timed>, walk: [] as Array<Timed> }
    let changes = 0
    for (let round = 0; round < rounds; round++) {
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!)
      for (const p of order) {
        const client = join(work, `client-${p.name}`)
        await p.reset(round, client)
        const measure = (c: Case, f: () => Timed) => {
          if (!cases.includes(c)) return
          const before = p.serverCpu()
          try {
            const t = f()
            samples
              .get(p.name)!
              .get(c)!
              .push({ seconds: t.seconds, cpu: t.cpu, sys: t.sys, serverCpu: p.serverCpu() - before })
            console.error(
              `round ${round + 1}, ${p.name}, ${c}: ${t.seconds.toFixed(2)} s (${t.cpu.toFixed(2)} s CPU, of it ${t.sys.toFixed(2)} s system)`
            )
          } catch (e) {
            console.error(`${p.name} ${c}: ${e instanceof Error ? e.message.slice(0, 300) : String(e)}`)
            samples.get(p.name)!.get(c)!.push("failed")
          }
        }
        const touch = (n: number) => {
          for (let i = 0; i < n; i++) {
            const k = (changes++ * 7919) % files
            const top = ["agents", "skills", "content", "config"][k % 4]!
            appendFileSync(
              join(client, "services", top, `group-${Math.floor(k / 100)}`, `item-${k}.md`),
              "\nOne more line.\n"
            )
          }
        }
        measure("first full upload", () => p.upload(round, client))
        measure("no-change run", () => p.upload(round, client))
        // Files are changed only for the cases that push them: a change left unpushed would be missing from the
        // download below, and the size check would report the tool for it.
        if (cases.includes("one file changed")) touch(1)
        measure("one file changed", () => p.upload(round, client))
        if (cases.includes("100 files changed")) touch(100)
        measure("100 files changed", () => p.upload(round, client))
        // Each download stays until the run ends (removed with `work`). ext4 without a journal skips, for every new
        // inode, each inode freed in the last one to six minutes in its group: removing a download here made every
        // file created in the next minutes cost up to ~0.5 ms of system CPU, each tool's download paying for the one
        // before it by an amount set by the order (agentsync's download came first after each removal; rsync's
        // after its own upload).
        const into = join(work, `download-${p.name}-${round}`)
        mkdirSync(into)
        measure("full download", () => p.download(round, into))
        const got = treeSize(join(into, "services"))
        const want = treeSize(join(client, "services"))
        if (cases.includes("full download") && (got.files !== want.files || got.bytes !== want.bytes))
          console.error(
            `${p.name}: the download holds ${got.files} files / ${got.bytes} B, not ${want.files} / ${want.bytes}`
          )
      }
      for (let i = 0; i < (floorCases.length > 0 ? 3 : 0); i++) {
        floor.start.push(nodeStart(work))
        floor.walk.push(plainWalk(walker, join(tree, "services")))
      }
    }
    const fmt = (s: ReadonlyArray<Sample | "failed">, key: keyof Sample) => {
      const ok = s.filter((x): x is Sample => x !== "failed")
      return ok.length === 0 ? undefined : median(ok.map((x) => x[key]))
    }
    console.log(
      `\n${size.files} files, ${(size.bytes / 1024 / 1024).toFixed(1)} MiB; medians of ${rounds} round(s); wall s (client CPU s; of it system s: creating files on ext4 swings by about 1 s from run to run, for every tool); loopback, server side local`
    )
    const names = peers.map((p) => p.name)
    console.log(
      `| case | ${names.join(" | ")} | agentsync ÷ best peer, wall | agentsync ÷ best peer, CPU | agentsync server CPU |${flags.before === undefined ? "" : " ÷ before, wall | ÷ before, CPU | before server CPU | ÷ before, server CPU |"}`
    )
    console.log(
      `| --- | ${names.map(() => "---").join(" | ")} | --- | --- | --- |${flags.before === undefined ? "" : " --- | --- | --- | --- |"}`
    )
    for (const c of cases) {
      const cells = names.map((n) => {
        const s = samples.get(n)!.get(c)!
        const w = fmt(s, "seconds")
        return w === undefined
          ? "failed"
          : `${w.toFixed(2)} (${fmt(s, "cpu")!.toFixed(2)}; sys ${fmt(s, "sys")!.toFixed(2)})`
      })
      const ours = samples.get("agentsync")?.get(c)
      const peerWalls = names
        .filter((n) => n !== "agentsync" && n !== "before")
        .map((n) => [fmt(samples.get(n)!.get(c)!, "seconds"), fmt(samples.get(n)!.get(c)!, "cpu")] as const)
        .filter((x): x is readonly [number, number] => x[0] !== undefined)
      const best = peerWalls.reduce<readonly [number, number] | undefined>(
        (b, x) => (b === undefined || x[0] < b[0] ? x : b),
        undefined
      )
      const wall = ours === undefined ? undefined : fmt(ours, "seconds")
      const cpu = ours === undefined ? undefined : fmt(ours, "cpu")
      const ratio = (a: number | undefined, b: number | undefined) =>
        a === undefined || b === undefined ? "—" : `${(a / b).toFixed(2)}×`
      const server = ours === undefined ? undefined : fmt(ours, "serverCpu")
      const before = samples.get("before")?.get(c)
      const versus =
        before === undefined
          ? ""
          : ` ${ratio(wall, fmt(before, "seconds"))} | ${ratio(cpu, fmt(before, "cpu"))} | ${fmt(before, "serverCpu")?.toFixed(2) ?? "—"} | ${ratio(server, fmt(before, "serverCpu"))} |`
      console.log(
        `| ${c} | ${cells.join(" | ")} | ${ratio(wall, best?.[0])} | ${ratio(cpu, best?.[1])} | ${server === undefined ? "—" : server.toFixed(2)} |${versus}`
      )
    }
    if (floor.start.length > 0) {
      const m = (xs: ReadonlyArray<Timed>, key: "seconds" | "cpu") => median(xs.map((x) => x[key]))
      const [startWall, startCpu, walkWall, walkCpu] = [
        m(floor.start, "seconds"),
        m(floor.start, "cpu"),
        m(floor.walk, "seconds"),
        m(floor.walk, "cpu")
      ]
      console.log(
        `\nfloor, in the same rounds (medians of ${floor.start.length}), the same node: node start alone ${startWall.toFixed(2)} s (${startCpu.toFixed(2)} s CPU); node + a plain readdirSync/lstatSync walk of the tree ${walkWall.toFixed(2)} s (${walkCpu.toFixed(2)} s CPU)`
      )
      console.log(
        "| case | build | wall (client CPU) | ÷ node start, wall | ÷ node start, CPU | ÷ node + walk, wall | ÷ node + walk, CPU |\n| --- | --- | --- | --- | --- | --- | --- |"
      )
      for (const c of floorCases) {
        for (const name of ["agentsync", "before"]) {
          const s = samples.get(name)?.get(c)
          const [wall, cpu] = s === undefined ? [undefined, undefined] : [fmt(s, "seconds"), fmt(s, "cpu")]
          if (wall === undefined || cpu === undefined) continue
          console.log(
            `| ${c} | ${name} | ${wall.toFixed(2)} (${cpu.toFixed(2)}) | ${times(wall, startWall)} | ${times(cpu, startCpu)} | ${times(wall, walkWall)} | ${times(cpu, walkCpu)} |`
          )
        }
      }
    }
    const ours = peers.find((p) => p.name === "agentsync")
    if (ours !== undefined && cases.includes("no-change run")) await budget(ours, join(work, "client-agentsync"))
  } finally {
    for (const p of peers) p.stop()
  }
}

const main = async () => {
  const build = spawnSync("npm", ["run", "build"], { cwd: REPO, stdio: "ignore" })
  if (build.status !== 0) throw new Error("npm run build failed")
  const pg = await startPostgres()
  try {
    const missing = ["rsync", "unison", "rclone"].filter((t) => !installed(t))
    console.log(
      `agentsync file sync beside its peers — ${new Date().toISOString()}, node ${process.version}${missing.length > 0 ? `; not installed, left out: ${missing.join(", ")}` : ""}`
    )
    await bench(pg, Number(flags.files), Number(flags.mib), Number(flags.rounds), CASES)
    if (flags.large) await bench(pg, 100_000, 200, 1, ["first full upload", "no-change run", "full download"])
  } finally {
    pg.stop()
    for (const work of works) rmSync(work, { recursive: true, force: true })
  }
}

await main()
