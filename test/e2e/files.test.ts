// `agentsync files` as a user runs it: the built CLI against `agentsync serve` on loopback over the real PostgreSQL.
import { type ChildProcess, spawn } from "node:child_process"
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PIECE_UNITS } from "../../src/cli/writeOut.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { makeMembership } from "../../src/domain/membership.js"
import { agentsync, BIN, cleanEnv, ensureBuilt, REPO, start, startServe } from "../support/cli.js"
import { claimedEntry, hostileCases, plainHostileCases } from "../support/hostile.js"
import { freshDatabase } from "../support/pg.js"

const EXAMPLE = join(REPO, "examples/project/services")
const temps: Array<string> = []
const children: Array<ChildProcess> = []
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `agentsync-e2e-files-${name}-`))
  temps.push(d)
  return d
}

/** Every file under services/ that file sync carries, with its bytes. */
const memberTree = (root: string): Record<string, string> => {
  const member = makeMembership()
  const out: Record<string, string> = {}
  const go = (dir: string, rel: string) => {
    if (!existsSync(dir)) return
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) go(join(dir, e.name), r)
      else if (member.includes(r)) out[r] = readFileSync(join(dir, e.name)).toString("base64")
    }
  }
  go(join(root, "services"), "")
  return out
}
/** Every file under services/, members or not: what a rejected pull must leave byte-identical. */
const wholeTree = (root: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const go = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) go(join(dir, e.name), r)
      else out[r] = readFileSync(join(dir, e.name)).toString("base64")
    }
  }
  go(join(root, "services"), "")
  return out
}

const serve = async (env: Record<string, string>, cwd: string) => {
  const server = await startServe(env, cwd)
  children.push(server.child)
  return server
}

let databaseUrl: string
let one: string
let two: string
let tenant: { tenant_id: string; token: string }
let other: { tenant_id: string; token: string }

const project = (name: string, withExample = false) => {
  const root = tempDir(name)
  mkdirSync(join(root, "services"), { recursive: true })
  // A project: a services path that looks like none is refused (exit 2).
  writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
  if (withExample) cpSync(EXAMPLE, join(root, "services"), { recursive: true })
  return root
}
const files = (
  root: string,
  args: ReadonlyArray<string>,
  url = one,
  token = tenant.token,
  extra: Record<string, string> = {}
) =>
  agentsync(["--json", "files", ...args], {
    cwd: root,
    env: { AGENTSYNC_DIRECT_URL: url, AGENTSYNC_TOKEN: token, ...extra }
  })

beforeAll(async () => {
  ensureBuilt()
  databaseUrl = await freshDatabase("e2efiles")
  const admin = tempDir("admin")
  const created = await agentsync(["--json", "tenant", "create", "Acme"], {
    cwd: admin,
    env: { DATABASE_URL: databaseUrl }
  })
  expect(created.code, created.stderr).toBe(0)
  tenant = JSON.parse(created.stdout)
  other = JSON.parse(
    (await agentsync(["--json", "tenant", "create", "Globex"], { cwd: admin, env: { DATABASE_URL: databaseUrl } }))
      .stdout
  )
  // Two server processes on one database.
  const [a, b] = await Promise.all([
    serve({ DATABASE_URL: databaseUrl }, admin),
    serve({ DATABASE_URL: databaseUrl }, admin)
  ])
  one = a.url
  two = b.url
}, 120_000)

afterAll(() => {
  for (const c of children) c.kill("SIGTERM")
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

describe("agentsync files (e2e)", () => {
  it("tenant create prints the id and a token once; the server keeps neither in plain text on stdout again", () => {
    expect(tenant.tenant_id).toMatch(/^acme-[0-9a-f]{8}$/)
    expect(tenant.token).toMatch(/^ast_/)
    expect(other.tenant_id).not.toBe(tenant.tenant_id)
  })

  it("push, edit, push, pull into a fresh directory gives an identical tree, through either server", async () => {
    const a = project("a", true)
    const diff = await files(a, ["diff"])
    expect(diff.code, diff.stderr).toBe(0)
    const plan = JSON.parse(diff.stdout)
    const count = Object.keys(memberTree(a)).length
    expect(plan.counts).toEqual({ added: count, modified: 0, removed: 0, unchanged: 0 })
    expect(plan.files[0]).toMatchObject({ status: "Added" })

    const dry = await files(a, ["push", "--dry-run"])
    expect(JSON.parse(dry.stdout).dry_run).toBe(true)
    expect(existsSync(join(a, ".agentsync"))).toBe(false)

    const first = await files(a, ["push"])
    expect(first.code, first.stderr).toBe(0)
    expect(JSON.parse(first.stdout).files_sent).toBe(count)

    const agent = readdirSync(join(a, "services/agents"))[0]!
    writeFileSync(join(a, "services/agents", agent, "system_prompt.md"), "An edited prompt.\n")
    const second = JSON.parse((await files(a, ["push"], two)).stdout)
    expect(second.files).toEqual([
      expect.objectContaining({ path: `agents/${agent}/system_prompt.md`, status: "Modified", action: "upload" })
    ])
    expect(second.files_sent).toBe(1)

    const b = project("b")
    const pulled = await files(b, ["pull"], one)
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(memberTree(b)).toEqual(memberTree(a))
    const c = project("c")
    expect((await files(c, ["pull"], two)).code).toBe(0)
    expect(memberTree(c)).toEqual(memberTree(a))
    const again = JSON.parse((await files(c, ["diff"], one)).stdout)
    expect(again.counts.unchanged).toBe(count)
    // Eight runs of the CLI: on a loaded machine each can take several seconds.
  }, 180_000)

  /** A project holding the given services files, and a tenant of its own (the other tests push other trees to theirs). */
  const withOwnTenant = async (name: string, tenant: string, tree: ReadonlyArray<readonly [string, string]>) => {
    const p = project(name)
    for (const [f, text] of tree) {
      mkdirSync(join(p, "services", f, ".."), { recursive: true })
      writeFileSync(join(p, "services", f), text)
    }
    const created = await agentsync(["--json", "tenant", "create", tenant], {
      cwd: p,
      env: { DATABASE_URL: databaseUrl }
    })
    expect(created.code, created.stderr).toBe(0)
    return { p, own: (JSON.parse(created.stdout) as { token: string }).token }
  }

  // The walk once skipped a whole top folder when an ignore rule matched a made-up `<top>/x`: the push then saw the
  // folder's files as deleted, and `--delete` removed them on the server, though the ignore file takes them.
  it("an ignore file whose rules match no file (`x`) or re-include one (`agents/`, `!agents/a.md`) removes nothing with push --delete", async () => {
    const { p, own } = await withOwnTenant("ignore-x", "Initech", [
      ["agents/a.md", "a"],
      ["agents/b.txt", "b"],
      ["skills/s/k.md", "k"]
    ])
    const first = await files(p, ["push"], one, own)
    expect(first.code, first.stderr).toBe(0)
    for (const [ignore, kept] of [
      // agents/b.txt, now ignored, is neither listed nor removed; agents/a.md is re-included and stays.
      ["agents/\n!agents/a.md\n", ["agents/a.md", "skills/s/k.md"]],
      ["x\n", ["agents/a.md", "agents/b.txt", "skills/s/k.md"]]
    ] as const) {
      writeFileSync(join(p, "services/.agentsyncignore"), ignore)
      const res = await files(p, ["push", "--delete"], one, own)
      expect(res.code, res.stderr).toBe(0)
      const pushed = JSON.parse(res.stdout) as { files: Array<{ path: string; status: string }> }
      expect(pushed.files.filter((f) => f.status === "Removed")).toEqual([])
      // What the server holds, pulled into an empty project: every file the ignore file takes still there.
      const q = project("ignore-x-pull")
      const pulled = await files(q, ["pull"], one, own)
      expect(pulled.code, pulled.stderr).toBe(0)
      expect(Object.keys(memberTree(q))).toEqual(expect.arrayContaining([...kept]))
    }
  }, 120_000)

  // A name that is not UTF-8 (a Latin-1 name from an old archive) has no path to send or to leave out: left out, its
  // UTF-8 name would read as deleted. The built CLI refuses the push, exit 1, naming the folder and the bytes.
  it("a Latin-1 name under services refuses push, exit 1, naming the folder and the bytes; the server's head unchanged", async () => {
    const { p, own } = await withOwnTenant("latin1", "Latin", [
      ["agents/a.md", "agents/a.md"],
      ["skills/café/SKILL.md", "skills/café/SKILL.md"]
    ])
    expect((await files(p, ["push"], one, own)).code).toBe(0)
    const head = (await files(p, ["log"], one, own)).stdout
    writeFileSync(Buffer.from(`${join(p, "services/agents")}/r\xe9sum\xe9.md`, "latin1"), "# cv\n")
    const res = await files(p, ["push", "--delete"], one, own)
    expect(res.code, res.stderr).toBe(1)
    expect(res.stderr).toContain('error: services/agents: the name "r\\xe9sum\\xe9.md" is not UTF-8')
    expect((await files(p, ["log"], one, own)).stdout).toBe(head)
    // A pushed skill's folder renamed to Latin-1, under rules that take only each skill's SKILL.md: refused too, where
    // leaving the folder out would have deleted skills/café/SKILL.md on the server.
    rmSync(Buffer.from(`${join(p, "services/agents")}/r\xe9sum\xe9.md`, "latin1"))
    writeFileSync(join(p, "services/.agentsyncignore"), "skills/*/*\n!skills/*/SKILL.md\n")
    renameSync(join(p, "services/skills/café"), Buffer.from(`${join(p, "services/skills")}/caf\xe9`, "latin1"))
    const folder = await files(p, ["push", "--delete"], one, own)
    expect(folder.code, folder.stderr).toBe(1)
    expect(folder.stderr).toContain('error: services/skills: the name "caf\\xe9" is not UTF-8')
    expect((await files(p, ["log"], one, own)).stdout).toBe(head)
  }, 120_000)

  it("answers a wrong token with 401 and another tenant's token with 403, and prints no data", async () => {
    const p = project("auth", true)
    const wrong = await files(p, ["diff"], one, `${tenant.token.slice(0, -3)}xyz`)
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/unauthorized: .*401/)
    // With --json, the only document is the error: no file data.
    expect(Object.keys(JSON.parse(wrong.stdout))).toEqual(["error"])
    expect(JSON.parse(wrong.stdout).error.tag).toBe("Unauthorized")
    const relay = await agentsync(["--json", "files", "pull"], {
      cwd: p,
      env: { AGENTSYNC_API_URL: one, AGENTSYNC_TENANT_ID: tenant.tenant_id, AGENTSYNC_TOKEN: other.token }
    })
    expect(relay.code).toBe(1)
    expect(relay.stderr).toMatch(/403/)
    expect(Object.keys(JSON.parse(relay.stdout))).toEqual(["error"])
    expect(relay.stderr).not.toContain(other.token)
    expect(relay.stdout).not.toContain(other.token)
    const own = await agentsync(["--json", "files", "diff"], {
      cwd: p,
      env: { AGENTSYNC_API_URL: one, AGENTSYNC_TENANT_ID: other.tenant_id, AGENTSYNC_TOKEN: other.token }
    })
    expect(own.code, own.stderr).toBe(0)
  })

  it("takes a token with a trailing newline (from $(cat file)); refuses one with a line break inside, naming the variable, not the token", async () => {
    const p = project("token", true)
    const trailing = await files(p, ["diff"], one, `${tenant.token}\n`)
    expect(trailing.code, trailing.stderr).toBe(0)
    const inside = await files(p, ["diff"], one, `${tenant.token.slice(0, 10)}\n${tenant.token.slice(10)}`)
    expect(inside.code).toBe(2)
    expect(inside.stderr).toMatch(/^error: missing configuration AGENTSYNC_TOKEN: holds a space, a line break/)
    expect(inside.stderr).not.toMatch(/\n\s+at /)
    expect(inside.stderr).not.toContain(tenant.token.slice(10))
  })

  it("refuses a malformed retry or timeout variable, naming it, with exit 2 and nothing sent", async () => {
    const p = project("badenv", true)
    for (const [name, value] of [
      ["AGENTSYNC_RETRY_MAX", "abc"],
      ["AGENTSYNC_TIMEOUT_MS", "-1"]
    ] as const) {
      const res = await files(p, ["push"], one, tenant.token, { [name]: value })
      expect(res.code, res.stderr).toBe(2)
      expect(res.stderr).toMatch(
        new RegExp(`^error: missing configuration ${name}: must be a (whole )?number ≥ 0, got "${value}"`)
      )
      expect(res.stderr).not.toMatch(/\n\s+at /)
    }
  })

  it("retries a dead server, then fails with one clear error", async () => {
    const p = project("dead", true)
    const port = await new Promise<number>((r) => {
      const s = createServer()
      s.listen(0, "127.0.0.1", () => {
        const { port } = s.address() as AddressInfo
        s.close(() => r(port))
      })
    })
    const started = Date.now()
    const res = await files(p, ["push"], `http://127.0.0.1:${port}`, tenant.token, {
      AGENTSYNC_RETRY_BASE_MS: "50",
      AGENTSYNC_RETRY_MAX: "3"
    })
    expect(res.code).toBe(1)
    const errors = res.stderr.split("\n").filter((l) => l.startsWith("error:"))
    expect(errors.length).toBe(1)
    expect(errors[0]).toMatch(/server unreachable \(gave up after 4 attempts: .*ECONNREFUSED/)
    expect(Date.now() - started).toBeGreaterThan(150)
    expect(res.stderr).not.toContain(tenant.token)
  })

  it("of two clients pushing from the same base, one wins and the other gets Conflict (exit 3), nothing lost", async () => {
    const t = JSON.parse(
      (
        await agentsync(["--json", "tenant", "create", "Race"], {
          cwd: tempDir("race"),
          env: { DATABASE_URL: databaseUrl }
        })
      ).stdout
    )
    const a = project("race-a", true)
    expect((await files(a, ["push"], one, t.token)).code).toBe(0)
    const b = project("race-b")
    expect((await files(b, ["pull"], two, t.token)).code).toBe(0)
    writeFileSync(join(a, "services/config/app.yaml"), "from: a\n")
    writeFileSync(join(b, "services/config/app.yaml"), "from: b\n")
    const [ra, rb] = await Promise.all([files(a, ["push"], one, t.token), files(b, ["push"], two, t.token)])
    expect([ra.code, rb.code].sort()).toEqual([0, 3])
    const loser = ra.code === 3 ? ra : rb
    expect(loser.stderr).toMatch(/conflict/)
    const winner = ra.code === 0 ? "a" : "b"
    const fresh = project("race-c")
    await files(fresh, ["pull"], one, t.token)
    expect(readFileSync(join(fresh, "services/config/app.yaml"), "utf8")).toBe(`from: ${winner}\n`)
    // The loser's edit is still on its disk.
    expect(readFileSync(join(ra.code === 3 ? a : b, "services/config/app.yaml"), "utf8")).toBe(
      `from: ${ra.code === 3 ? "a" : "b"}\n`
    )
  })

  it("a --json report of many pieces is JSON.stringify's text; a reader that goes ends it quietly; a full disk is an error", async () => {
    const p = project("large-report")
    for (let i = 0; i < 600; i++) {
      mkdirSync(join(p, `services/content/g${i % 7}`), { recursive: true })
      writeFileSync(join(p, `services/content/g${i % 7}/é-${i}.md`), `# ${i}\n`)
    }
    const pushed = await files(p, ["push"])
    expect(pushed.code, pushed.stderr).toBe(0)
    expect(pushed.stdout.length).toBeGreaterThan(2 * PIECE_UNITS)
    expect(pushed.stdout).toBe(`${JSON.stringify(JSON.parse(pushed.stdout), null, 2)}\n`)
    // A diff from an empty project lists all 600: read a little of it, then close the pipe.
    const reader = project("large-report-reader")
    const env = { AGENTSYNC_DIRECT_URL: one, AGENTSYNC_TOKEN: tenant.token }
    const run = start(["--json", "files", "diff"], { cwd: reader, env })
    run.child.stdout!.once("data", () => run.child.stdout!.destroy())
    const gone = await run.done
    expect(gone.code, gone.stderr).toBe(0)
    expect(gone.stderr).not.toMatch(/EPIPE|Error|unexpected/)
    // Written to a device that is full, as JSON or as text: the report is lost, so the run says so and exits 1.
    const full = openSync("/dev/full", "w")
    try {
      for (const json of [["--json"], []]) {
        const child = spawn(process.execPath, [BIN, ...json, "files", "diff"], {
          cwd: reader,
          env: cleanEnv(env),
          stdio: ["ignore", full, "pipe"]
        })
        let stderr = ""
        child.stderr!.on("data", (d) => {
          stderr += d
        })
        const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
        expect(code, stderr).toBe(1)
        expect(stderr).toMatch(/stdout: cannot write the output: ENOSPC/)
      }
    } finally {
      closeSync(full)
    }
  })

  describe("a hostile server", () => {
    let hostile: Server
    let url: string
    let archive: Buffer = Buffer.alloc(0)
    beforeAll(async () => {
      hostile = createServer((req, res) => {
        if (req.url?.startsWith("/api/v1/sync/files/manifest")) {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(
            JSON.stringify({
              tenant: "evil",
              revision: "r-evil",
              entries: [claimedEntry],
              checksum: manifestChecksum([claimedEntry])
            })
          )
        } else {
          res.writeHead(200, { "content-type": archive[0] === 0x1f ? "application/gzip" : "application/x-tar" })
          res.end(archive)
        }
      })
      await new Promise<void>((r) => hostile.listen(0, "127.0.0.1", r))
      url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`
    })
    afterAll(() => new Promise((r) => hostile.close(r)))

    // A pull names a plain tar among what it reads (the server's answer on loopback): the same cases unframed, and
    // what only a plain tar can get wrong, cost nothing either.
    const cases = [
      ...hostileCases(),
      ...plainHostileCases().map(({ name, archive }) => ({ name: `${name} (a plain tar)`, archive }))
    ]
    for (const c of cases) {
      it(`rejects a download with ${c.name} and leaves the local tree byte-identical`, async () => {
        archive = c.archive
        const p = project(`hostile-${c.name.replace(/\W+/g, "-")}`, true)
        writeFileSync(join(p, "services/agents/a.txt"), "not a member, still untouched")
        const before = wholeTree(p)
        const res = await files(p, ["pull", "--force", "--delete"], url)
        expect(res.code, res.stdout).toBe(1)
        expect(res.stderr).toMatch(/unsafe tarball/)
        expect(wholeTree(p)).toEqual(before)
        expect(existsSync(join(p, "escape.txt"))).toBe(false)
        expect(readdirSync(join(p, ".agentsync")).filter((n) => n.startsWith("staging-"))).toEqual([])
      })
    }
  })
})
