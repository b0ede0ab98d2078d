// Benchmark of deploys: `npm run bench:deploy`. The built CLI against `agentsync serve` on loopback over a real
// PostgreSQL (scripts/pg.mjs), with the stub docker/hook programs of test/support/deploy.ts on PATH (there is no
// container engine here) and a health server in this process. In the same run:
// 1. `agentsync deploy`, beside the same steps done by hand: a plain Node script that takes the lock, fetches the
//    registry credential, spawns the same stubs in sequence (build command, docker build, docker login with the
//    secret on stdin, docker push), posts the release by digest, polls it every 20 ms until it is active and
//    releases the lock. The ratio is agentsync's overhead over the bare steps.
// 2. `deploy --dry-run` and `deploy releases` (start-up + one request), beside `agentsync --version`.
// 3. With buildah, docker-registry and htpasswd installed: a `--builder buildah` deploy of a FROM scratch image to
//    Debian's registry on loopback, beside `buildah bud` + `buildah login` + `buildah push` run directly.
// Every figure is the median of several runs, alternated, each timed by /usr/bin/time: wall and CPU (user + system,
// including the programs it waited for: the stubs, buildah), so a machine busy with other work shows in the wall
// times more than in the CPU times.
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { availableParallelism, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { agentsync, BIN, cleanEnv, REPO as ROOT, startServe } from "../test/support/cli.js"
import { healthServer, makeProject, makeStubs } from "../test/support/deploy.js"
import { freshDatabase } from "../test/support/pg.js"
import { buildIfStale } from "./built.js"

interface Pg {
  readonly url: string
  readonly stop: () => void
}
const { startPostgres } = (await import(join(import.meta.dirname, "pg.mjs") as string)) as {
  startPostgres: () => Promise<Pg>
}

const RUNS = Number(process.env["BENCH_DEPLOY_RUNS"] ?? 5)
const PASSWORD = "bench-Pa55word-for-the-registry"
const REGISTRY = "registry.example.com/acme"

interface Timed {
  readonly wall: number
  readonly cpu: number
  readonly stdout: string
}

/** Runs a command under /usr/bin/time without blocking this process (the health server answers from it). */
const timed = (
  cmd: string,
  args: ReadonlyArray<string>,
  options: { cwd: string; env: Record<string, string>; input?: string }
) =>
  new Promise<Timed>((resolve, reject) => {
    const out = join(work, `time-${Math.random().toString(36).slice(2)}`)
    const started = performance.now()
    const child = spawn("/usr/bin/time", ["-o", out, "-f", "%U %S", cmd, ...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => {
      stdout += d
    })
    child.stderr.on("data", (d) => {
      stderr += d
    })
    child.on("error", reject)
    child.on("close", (code) => {
      const wall = (performance.now() - started) / 1000
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}:\n${stderr.slice(-2000)}`))
      const [user, system] = readFileSync(out, "utf8").trim().split("\n").at(-1)!.split(" ").map(Number)
      rmSync(out, { force: true })
      resolve({ wall, cpu: user! + system!, stdout })
    })
    child.stdin.end(options.input ?? "")
  })

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const sec = (n: number) => `${n.toFixed(2)} s`

/** Median wall and CPU of runs alternated between the named commands (after one warm-up each: the code cache). */
const compare = async (runs: number, commands: Record<string, (i: number) => Promise<Timed>>) => {
  const names = Object.keys(commands)
  for (const n of names) await commands[n]!(-1)
  const got: Record<string, Array<Timed>> = Object.fromEntries(names.map((n) => [n, []]))
  for (let i = 0; i < runs; i++) for (const n of names) got[n]!.push(await commands[n]!(i))
  return Object.fromEntries(
    names.map((n) => [n, { wall: median(got[n]!.map((t) => t.wall)), cpu: median(got[n]!.map((t) => t.cpu)) }])
  ) as Record<string, { wall: number; cpu: number }>
}

/** The bare steps of a deploy, as a plain Node script with no dependency: what row 1 compares agentsync with. */
const BASELINE = `import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
const { BASE, TOKEN, IMAGE, REPO, TAG } = process.env
const api = async (method, path, body, headers = {}) => {
  const r = await fetch(BASE + path, { method, headers: { authorization: "Bearer " + TOKEN, "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  if (!r.ok) throw new Error(method + " " + path + ": " + r.status + " " + text)
  return JSON.parse(text)
}
const run = (argv, options = {}) => new Promise((resolve, reject) => {
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...options.env }, stdio: ["pipe", "pipe", "pipe"] })
  let out = ""
  child.stdout.on("data", (d) => { out += d })
  child.stderr.on("data", () => {})
  child.on("error", reject)
  child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(argv.join(" ") + " exited with " + code))))
  child.stdin.end(options.stdin ?? "")
})
const lock = await api("POST", "/deploy/lock", { holder: "baseline", message: "" })
try {
  const credential = await api("GET", "/registry-token")
  await run(["make", "assets"])
  await run(["docker", "build", "-f", join(process.cwd(), "Dockerfile"), "-t", IMAGE, process.cwd()])
  const config = mkdtempSync(join(tmpdir(), "bench-docker-"))
  let pushed
  try {
    await run(["docker", "login", IMAGE.split("/")[0], "-u", credential.username, "--password-stdin"], { env: { DOCKER_CONFIG: config }, stdin: credential.password })
    pushed = await run(["docker", "push", IMAGE], { env: { DOCKER_CONFIG: config } })
  } finally {
    rmSync(config, { recursive: true, force: true })
  }
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)[1]
  const release = await api("POST", "/deploy", { image: REPO + "@" + digest, tag: TAG, source_sha: null, dirty: null, lock_id: lock.id, message: "", health: { path: "/healthz", timeout_seconds: 30 } }, { "idempotency-key": crypto.randomUUID() })
  let status = release.status
  while (["pending", "hook", "checking"].includes(status)) {
    await new Promise((r) => setTimeout(r, 20))
    status = (await api("GET", "/releases/" + release.number)).status
  }
  if (status !== "active") throw new Error("release " + release.number + " is " + status)
} finally {
  await api("DELETE", "/deploy/lock/" + encodeURIComponent(lock.id))
}
`

buildIfStale(ROOT)
const work = mkdtempSync(join(tmpdir(), "agentsync-bench-deploy-"))
const server = await startPostgres()
process.env["AGENTSYNC_TEST_PG_URL"] = server.url
const stubs = makeStubs()
const health = await healthServer(() => false)
const children: Array<{ kill: () => boolean }> = []
let registry: ReturnType<typeof spawn> | undefined
try {
  const databaseUrl = await freshDatabase("bench_deploy")
  const created = await agentsync(["--json", "tenant", "create", "Acme"], {
    cwd: work,
    env: { DATABASE_URL: databaseUrl }
  })
  if (created.code !== 0) throw new Error(created.stderr)
  const tenant = JSON.parse(created.stdout) as { tenant_id: string; token: string }
  const serve = await startServe(
    {
      DATABASE_URL: databaseUrl,
      STUB_DIR: stubs.dir,
      AGENTSYNC_DEPLOY_HOOK: JSON.stringify([join(stubs.bin, "hook"), "{image}", "{release}", "{tenant}"]),
      AGENTSYNC_DEPLOY_HEALTH_URL: health.url,
      AGENTSYNC_REGISTRY_USERNAME: "bot",
      AGENTSYNC_REGISTRY_PASSWORD: PASSWORD
    },
    work
  )
  children.push(serve.child)
  const project = makeProject(
    `deploy:\n  app: web\n  registry: ${REGISTRY}\n  build:\n    - [make, assets]\n  health:\n    path: /healthz\n    timeout: 30s\n`
  )
  const env = cleanEnv({
    PATH: `${stubs.bin}:${process.env["PATH"]}`,
    STUB_DIR: stubs.dir,
    AGENTSYNC_DIRECT_URL: serve.url,
    AGENTSYNC_TOKEN: tenant.token
  })
  const baselineScript = join(work, "baseline.mjs")
  writeFileSync(baselineScript, BASELINE)
  const cli = (args: ReadonlyArray<string>) => timed(process.execPath, [BIN, ...args], { cwd: project, env })
  let n = 0
  const deploys = await compare(RUNS, {
    agentsync: () => cli(["deploy", "--tag", `cli-${++n}`]),
    baseline: () => {
      const tag = `bare-${++n}`
      return timed(process.execPath, [baselineScript], {
        cwd: project,
        env: {
          ...env,
          BASE: `${serve.url}/api/v1/sync`,
          TOKEN: tenant.token,
          IMAGE: `${REGISTRY}/web:${tag}`,
          REPO: `${REGISTRY}/web`,
          TAG: tag
        }
      })
    }
  })
  stubs.remove()
  const startup = await compare(RUNS, {
    dryRun: () => cli(["deploy", "--dry-run", "--tag", "v1"]),
    releases: () => cli(["deploy", "releases"]),
    version: () => cli(["--version"])
  })
  const releases = JSON.parse((await cli(["--json", "deploy", "releases"])).stdout) as Array<{ status: string }>
  const failed = releases.filter((r) => r.status !== "active" && r.status !== "superseded").length

  const rows: Array<[string, string, string, string]> = []
  const ratio = (a: { wall: number; cpu: number }, b: { wall: number; cpu: number }) =>
    `${(a.wall / b.wall).toFixed(2)}× wall, ${(a.cpu / b.cpu).toFixed(2)}× CPU`
  const cell = (t: { wall: number; cpu: number }) => `${sec(t.wall)} (CPU ${sec(t.cpu)})`
  rows.push([
    `deploy, stub docker + hook, health gate`,
    cell(deploys["agentsync"]!),
    `same steps by hand: ${cell(deploys["baseline"]!)}`,
    ratio(deploys["agentsync"]!, deploys["baseline"]!)
  ])
  rows.push([
    "deploy --dry-run",
    cell(startup["dryRun"]!),
    `agentsync --version: ${cell(startup["version"]!)}`,
    ratio(startup["dryRun"]!, startup["version"]!)
  ])
  rows.push([
    `deploy releases (${releases.length} releases)`,
    cell(startup["releases"]!),
    `agentsync --version: ${cell(startup["version"]!)}`,
    ratio(startup["releases"]!, startup["version"]!)
  ])
  if (failed > 0) throw new Error(`${failed} of the ${releases.length} releases did not become active`)

  // 3. buildah to a real registry on loopback.
  const has = (program: string) => spawnSync("sh", ["-c", `command -v ${program}`]).status === 0
  const missing = ["buildah", "docker-registry", "htpasswd"].filter((p) => !has(p))
  if (missing.length > 0) {
    console.warn(
      `buildah row SKIPPED: ${missing.join(", ")} not installed (apt-get install buildah docker-registry apache2-utils)`
    )
  } else {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const host = `127.0.0.1:${port}`
    writeFileSync(join(work, "htpasswd"), spawnSync("htpasswd", ["-Bbn", "bot", PASSWORD], { encoding: "utf8" }).stdout)
    mkdirSync(join(work, "data"))
    writeFileSync(
      join(work, "registry.yml"),
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, "data")}\nhttp:\n  addr: ${host}\n  secret: bench-only\nauth:\n  htpasswd:\n    realm: agentsync-bench\n    path: ${join(work, "htpasswd")}\n`
    )
    registry = spawn("docker-registry", ["serve", join(work, "registry.yml")], { stdio: "ignore" })
    const deadline = Date.now() + 30_000
    while (
      (await fetch(`http://${host}/v2/`).then(
        (r) => r.status,
        () => 0
      )) !== 401
    ) {
      if (Date.now() > deadline) throw new Error("the registry did not start")
      await new Promise((r) => setTimeout(r, 100))
    }
    writeFileSync(
      join(work, "storage.conf"),
      `[storage]\ndriver = "vfs"\ngraphroot = "${join(work, "storage")}"\nrunroot = "${join(work, "run")}"\n`
    )
    const buildahEnv = { CONTAINERS_STORAGE_CONF: join(work, "storage.conf"), BUILDAH_ISOLATION: "chroot" }
    // A server with no hook and no health URL: the release is recorded only, so the row is the build and push.
    const plain = await startServe(
      { DATABASE_URL: databaseUrl, AGENTSYNC_REGISTRY_USERNAME: "bot", AGENTSYNC_REGISTRY_PASSWORD: PASSWORD },
      work
    )
    children.push(plain.child)
    const root = makeProject(`deploy:\n  app: acme/hello\n  registry: ${host}\n  builder: buildah\n`)
    const benv = cleanEnv({ ...buildahEnv, AGENTSYNC_DIRECT_URL: plain.url, AGENTSYNC_TOKEN: tenant.token })
    const auth = join(work, "auth.json")
    const digestFile = join(work, "digest")
    const bare = (tag: string) =>
      [
        `buildah bud -f Dockerfile -t ${host}/acme/hello:${tag} .`,
        `buildah login --authfile ${auth} --tls-verify=false -u bot --password-stdin ${host}`,
        `buildah push --authfile ${auth} --tls-verify=false --digestfile ${digestFile} ${host}/acme/hello:${tag} docker://${host}/acme/hello:${tag}`,
        `rm -f ${auth}`
      ].join(" && ")
    const builds = await compare(Math.max(3, Math.ceil(RUNS / 2)), {
      agentsync: () => timed(process.execPath, [BIN, "deploy", "--tag", `cli-${++n}`], { cwd: root, env: benv }),
      baseline: () => timed("sh", ["-c", bare(`bare-${++n}`)], { cwd: root, env: { ...benv }, input: PASSWORD })
    })
    rows.push([
      "deploy --builder buildah, FROM scratch, registry on loopback",
      cell(builds["agentsync"]!),
      `buildah bud + login + push: ${cell(builds["baseline"]!)}`,
      ratio(builds["agentsync"]!, builds["baseline"]!)
    ])
    rmSync(root, { recursive: true, force: true })
  }
  rmSync(project, { recursive: true, force: true })

  console.log(
    `deploy, median of ${RUNS} runs each (buildah: ${Math.max(3, Math.ceil(RUNS / 2))}), alternated; ${availableParallelism()} CPUs, load average ${loadavg()[0]!.toFixed(1)}`
  )
  const width = rows.reduce((w, r) => Math.max(w, r[0].length), 0)
  for (const [what, ours, base, r] of rows) {
    console.log(`  ${what.padEnd(width)}  ${ours.padStart(24)}   ${base}   ${r}`)
  }
} finally {
  for (const c of children) c.kill()
  registry?.kill()
  await health.close()
  stubs.remove()
  server.stop()
  rmSync(work, { recursive: true, force: true })
}
