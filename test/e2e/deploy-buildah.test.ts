// The daemonless deploy for real: buildah builds a FROM scratch image and pushes it to Debian's docker-registry on
// loopback with htpasswd auth, and `agentsync serve` releases it by the digest the push reported.
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, ensureBuilt, startServe } from "../support/cli.js"
import { makeProject } from "../support/deploy.js"
import { freshDatabase, query } from "../support/pg.js"

const has = (program: string) => spawnSync("sh", ["-c", `command -v ${program}`]).status === 0
const missing = ["buildah", "docker-registry", "htpasswd"].filter((p) => !has(p))
if (missing.length > 0) {
  // Said out loud: a skipped test is not a passed one. `.ci/run` installs them (Debian: buildah, docker-registry, apache2-utils).
  console.warn(
    `SKIPPED the buildah deploy tests: ${missing.join(", ")} not installed (apt-get install buildah docker-registry apache2-utils)`
  )
}

const PASSWORD = "registry-Pa55word-for-buildah"

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

const waitFor = async (check: () => Promise<boolean>, what: string, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe.skipIf(missing.length > 0)("agentsync deploy --builder buildah, to a real registry", () => {
  let dir: string
  let registry: ChildProcess
  let registryHost: string
  let databaseUrl: string
  const servers: Array<ChildProcess> = []
  let tenant: { tenant_id: string; token: string }
  let url: string
  let wrongUrl: string
  let env: Record<string, string>

  beforeAll(async () => {
    ensureBuilt()
    dir = mkdtempSync(join(tmpdir(), "agentsync-buildah-"))
    const port = await freePort()
    registryHost = `127.0.0.1:${port}`
    const htpasswd = spawnSync("htpasswd", ["-Bbn", "bot", PASSWORD], { encoding: "utf8" })
    writeFileSync(join(dir, "htpasswd"), htpasswd.stdout)
    mkdirSync(join(dir, "data"))
    writeFileSync(
      join(dir, "registry.yml"),
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\nhttp:\n  addr: ${registryHost}\n  secret: test-only\nauth:\n  htpasswd:\n    realm: agentsync-test\n    path: ${join(dir, "htpasswd")}\n`
    )
    registry = spawn("docker-registry", ["serve", join(dir, "registry.yml")], { stdio: "ignore" })
    await waitFor(async () => (await fetch(`http://${registryHost}/v2/`)).status === 401, "the registry")
    // buildah as root without a container engine: its own storage (vfs) in the test folder, chroot isolation.
    writeFileSync(
      join(dir, "storage.conf"),
      `[storage]\ndriver = "vfs"\ngraphroot = "${join(dir, "storage")}"\nrunroot = "${join(dir, "run")}"\n`
    )
    env = { CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"), BUILDAH_ISOLATION: "chroot" }

    databaseUrl = await freshDatabase("e2ebuildah")
    const created = await agentsync(["--json", "tenant", "create", "Acme"], {
      cwd: dir,
      env: { DATABASE_URL: databaseUrl }
    })
    expect(created.code, created.stderr).toBe(0)
    tenant = JSON.parse(created.stdout)
    // The release hook checks that the registry really holds the released digest.
    const check = join(dir, "check-digest.mjs")
    writeFileSync(
      check,
      `const [image] = process.argv.slice(2); const [repo, digest] = image.split("@"); const [host, ...path] = repo.split("/");
const r = await fetch(\`http://\${host}/v2/\${path.join("/")}/manifests/\${digest}\`, { method: "HEAD", headers: { authorization: "Basic " + Buffer.from("bot:" + process.env.REGISTRY_CHECK_PASSWORD).toString("base64"), accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" } });
console.log("registry holds", image, "->", r.status); process.exit(r.status === 200 ? 0 : 1);\n`
    )
    const serverEnv = {
      DATABASE_URL: databaseUrl,
      AGENTSYNC_DEPLOY_HOOK: JSON.stringify([process.execPath, check, "{image}"]),
      AGENTSYNC_REGISTRY_USERNAME: "bot",
      REGISTRY_CHECK_PASSWORD: PASSWORD,
      AGENTSYNC_DEPLOY_REDACT: "REGISTRY_CHECK_PASSWORD"
    }
    const good = await startServe({ ...serverEnv, AGENTSYNC_REGISTRY_PASSWORD: PASSWORD }, dir)
    const wrong = await startServe({ ...serverEnv, AGENTSYNC_REGISTRY_PASSWORD: "not-the-password" }, dir)
    servers.push(good.child, wrong.child)
    url = good.url
    wrongUrl = wrong.url
  }, 90_000)

  afterAll(() => {
    for (const s of servers) s.kill()
    registry?.kill()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    for (const root of projects) rmSync(root, { recursive: true, force: true })
  })

  const projects: Array<string> = []
  const project = (host = registryHost) => {
    const root = makeProject(`deploy:\n  app: acme/hello\n  registry: ${host}\n  builder: buildah\n`)
    projects.push(root)
    return root
  }
  const cli = (root: string, args: ReadonlyArray<string>, server = url) =>
    agentsync(args, { cwd: root, env: { ...env, AGENTSYNC_DIRECT_URL: server, AGENTSYNC_TOKEN: tenant.token } })

  it("builds, pushes and releases by the digest the registry holds", async () => {
    const root = project()
    const started = performance.now()
    const r = await cli(root, ["--json", "deploy", "--tag", "v1"])
    const seconds = (performance.now() - started) / 1000
    expect(r.code, r.stderr).toBe(0)
    console.log(`buildah deploy of a FROM scratch image, end to end on loopback: ${seconds.toFixed(2)} s`)
    const report = JSON.parse(r.stdout)
    expect(report.release).toMatchObject({
      status: "active",
      image: `${registryHost}/acme/hello@${report.digest}`,
      tag: "v1"
    })
    expect(r.stderr).toContain(`registry holds ${registryHost}/acme/hello@${report.digest} -> 200`)
    // The tag in the registry names the same manifest the release points at.
    const head = await fetch(`http://${registryHost}/v2/acme/hello/manifests/v1`, {
      method: "HEAD",
      headers: {
        authorization: `Basic ${Buffer.from(`bot:${PASSWORD}`).toString("base64")}`,
        accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
      }
    })
    expect(head.headers.get("docker-content-digest")).toBe(report.digest)
    expect(r.stdout + r.stderr).not.toContain(PASSWORD)
    const [row] = await query<{ log: string }>(databaseUrl, "SELECT log FROM releases WHERE number = 1")
    expect(row!.log).not.toContain(PASSWORD)
  }, 120_000)

  it("a wrong registry password fails at login, clearly, with nothing pushed or released", async () => {
    const root = project()
    const before = await query(databaseUrl, "SELECT number FROM releases")
    const r = await cli(root, ["deploy", "--tag", "v2"], wrongUrl)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /error: login: buildah login .* -u bot --password-stdin 127\.0\.0\.1:\d+ exited with \d+:[\s\S]*(unauthorized|invalid username\/password)/i
    )
    expect(r.stderr).not.toContain("not-the-password")
    expect(await query(databaseUrl, "SELECT number FROM releases")).toEqual(before)
    const lock = await cli(root, ["--json", "deploy", "lock", "status"])
    expect(JSON.parse(lock.stdout).held).toBe(false)
  }, 120_000)

  it("an unreachable registry fails at login, naming it, with nothing released", async () => {
    const closed = `127.0.0.1:${await freePort()}`
    const root = project(closed)
    const before = await query(databaseUrl, "SELECT number FROM releases")
    const r = await cli(root, ["deploy", "--tag", "v3"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`error: login: buildah login`)
    expect(r.stderr).toMatch(/connection refused/i)
    expect(r.stderr).toContain(closed)
    expect(await query(databaseUrl, "SELECT number FROM releases")).toEqual(before)
  }, 120_000)
})
