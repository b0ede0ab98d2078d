import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { agentsync, REPO } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"

const dirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "agentsync-cli-"))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A project whose one agent file does not parse. */
const brokenProject = () => {
  const dir = tempDir()
  mkdirSync(join(dir, "services/agents/x"), { recursive: true })
  writeFileSync(join(dir, "services/agents/x/config.yaml"), "name: [\n")
  return dir
}

describe("global options anywhere (built CLI)", () => {
  it("takes --json after the command path and after its arguments", async () => {
    for (const args of [
      ["validate", "examples/project", "--json"],
      ["validate", "--json", "examples/project"],
      ["--json", "validate", "examples/project"]
    ]) {
      const r = await agentsync(args)
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0)
      expect(JSON.parse(r.stdout).inventory.agents).toBe(5)
    }
  })

  it("takes --services DIR, --services=DIR, -v and --verbose after the command", async () => {
    const r = await agentsync(["validate", "--services=examples/project", "-v"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^not synced by local sync: config\/ai\.yaml \(carried by file sync\)$/m)
    const s = await agentsync(["files", "backups", "--services", "examples/project", "--json", "--quiet"])
    expect(s.code, s.stderr).toBe(0)
    expect(JSON.parse(s.stdout)).toHaveProperty("backups")
  })

  it("`--` ends the options: what follows is an argument", async () => {
    const r = await agentsync(["validate", "--", "--json"])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toMatch(/--json does not exist/)
  })

  it("keeps stdout one JSON document with --log-level debug and --log-format json", async () => {
    const r = await agentsync([
      "validate",
      "examples/project",
      "--log-level",
      "debug",
      "--log-format",
      "json",
      "--json"
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).ok).toBe(true)
  })
})

describe("usage errors that help (built CLI)", () => {
  it("an unknown command: did you mean, and the commands of the right group", async () => {
    const r = await agentsync(["local", "dif"])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toMatch(/^error: unknown command "dif" for 'agentsync local'$/m)
    expect(r.stderr).toMatch(/Did you mean this\?\n\tdiff\n/)
    expect(r.stderr).toMatch(/^ {2}sync {2}/m)
    // The top-level commands are not the ones listed.
    expect(r.stderr).not.toMatch(/^ {2}deploy/m)
  })

  it("an option without its value, an unknown option, a wrong choice, a value given to a flag", async () => {
    const kind = await agentsync(["local", "diff", "--kind"])
    expect(kind.code).toBe(2)
    expect(kind.stderr).toMatch(/^error: option --kind needs a value/m)
    const before = await agentsync(["local", "diff", "--kind", "--json"])
    expect(before.code).toBe(2)
    expect(before.stderr).toMatch(/option --kind needs a value/)
    const typo = await agentsync(["skill", "status", "--jsn"])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toMatch(/unknown option --jsn for 'agentsync skill status'/)
    expect(typo.stderr).toMatch(/\t--json/)
    const choice = await agentsync(["skill", "sync", "--prefer", "hom"])
    expect(choice.code).toBe(2)
    expect(choice.stderr).toMatch(/invalid value "hom" for --prefer/)
    expect(choice.stderr).toMatch(/\thome\n/)
    const flag = await agentsync(["files", "push", "--dry-run=yes"])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/option --dry-run takes no value/)
  })

  it("with --json, a usage error is a document on stdout too", async () => {
    const r = await agentsync(["local", "dif", "--json"])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toEqual({
      error: { tag: "UsageError", message: `unknown command "dif" for 'agentsync local'`, suggestions: ["diff"] }
    })
  })
})

describe("--json always (built CLI)", () => {
  it("a failure is one document with the error's tag, message and fields, and the same exit code", async () => {
    const r = await agentsync(["validate", join(tempDir(), "missing"), "--json"])
    expect(r.code).toBe(2)
    const doc = JSON.parse(r.stdout)
    expect(doc.error).toMatchObject({ tag: "MissingConfig", key: "services" })
    expect(doc.error.message).toMatch(/does not exist/)
    expect(r.stderr).toMatch(/^error: missing configuration services/m)
  })

  it("a command that reports and then fails prints one document: its report and the error", async () => {
    const r = await agentsync(["validate", brokenProject(), "--json"])
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc.ok).toBe(false)
    expect(doc.problems).toHaveLength(1)
    expect(doc.error).toMatchObject({ tag: "InvalidInput", message: expect.stringMatching(/^1 problem in 1 file/) })
  })

  it("a malformed agentsync.yaml is a document naming its line", async () => {
    const dir = tempDir()
    mkdirSync(join(dir, "services"))
    writeFileSync(join(dir, "agentsync.yaml"), "tenant_id: t\napi_url: [1, 2]\n")
    const r = await agentsync(["validate", dir, "--json"])
    expect(r.code).toBe(2)
    const doc = JSON.parse(r.stdout)
    expect(doc.error.tag).toBe("UsageError")
    expect(doc.error.message).toMatch(/agentsync\.yaml:2: api_url: /)
  })
})

describe("help (built CLI)", () => {
  it("prints the page of the command, plain in a pipe, coloured only when asked", async () => {
    const r = await agentsync(["local", "sync", "--to-db", "--help"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^USAGE\n {2}agentsync local sync /m)
    expect(r.stdout).not.toContain("\x1b")
    expect(r.stdout).toMatch(/^EXAMPLES$/m)
    const group = await agentsync(["skill", "source"])
    expect(group.code).toBe(0)
    expect(group.stdout).toMatch(/^ {2}layout +show a source's layout/m)
    const colour = await agentsync(["--help", "--color", "always"])
    expect(colour.stdout).toContain("\x1b[1mUSAGE\x1b[0m")
  })
})

describe("diff --exit-code (built CLI)", () => {
  it("local diff exits 1 while the tree and the database differ, 0 once they are in step", async () => {
    const dir = tempDir()
    cpSync(join(REPO, "examples/project"), dir, { recursive: true })
    const env = { DATABASE_URL: await freshDatabase("cli") }
    const before = await agentsync(["local", "diff", "--exit-code", "--json"], { cwd: dir, env })
    expect(before.code, before.stderr).toBe(1)
    expect(JSON.parse(before.stdout).kinds.length).toBeGreaterThan(0)
    expect(before.stderr).not.toMatch(/error/)
    const plain = await agentsync(["local", "diff"], { cwd: dir, env })
    expect(plain.code, plain.stderr).toBe(0)
    const sync = await agentsync(["local", "sync", "--to-db"], { cwd: dir, env })
    expect(sync.code, sync.stderr).toBe(0)
    const after = await agentsync(["local", "diff", "--exit-code"], { cwd: dir, env })
    expect(after.code, after.stderr).toBe(0)
  })
})

describe("config (built CLI)", () => {
  it("prints each value with its origin, and secrets only as set or unset", async () => {
    const env = {
      AGENTSYNC_TOKEN: "tok-secret-123",
      DATABASE_URL: "postgres://u:pw-secret@h/db",
      AGENTSYNC_API_URL: "http://env.example"
    }
    const r = await agentsync(["config", "--services", "examples/project", "--json"], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).not.toContain("secret")
    const byName = Object.fromEntries(
      (JSON.parse(r.stdout).settings as Array<{ setting: string; value: string | null; origin: string }>).map((s) => [
        s.setting,
        s
      ])
    )
    expect(byName["tenant id"]).toMatchObject({ value: "acme-demo", origin: "agentsync.yaml tenant_id" })
    expect(byName["api url"]).toMatchObject({ value: "http://env.example", origin: "env AGENTSYNC_API_URL" })
    expect(byName["direct url"]).toMatchObject({ value: null })
    expect(byName.token).toMatchObject({ value: "set", origin: "env AGENTSYNC_TOKEN" })
    expect(byName["project database"]).toMatchObject({ value: "set" })
    expect(byName.services?.origin).toBe("flag --services")
  })
})

describe("init (built CLI)", () => {
  it("makes a project that validates and syncs, and never overwrites one", async () => {
    const dir = join(tempDir(), "new")
    const r = await agentsync(["init", dir])
    expect(r.code, r.stderr).toBe(0)
    const v = await agentsync(["validate", dir, "--json"])
    expect(v.code, v.stderr).toBe(0)
    expect(JSON.parse(v.stdout).inventory).toMatchObject({ agents: 1, skills: 1, contents: 1, access_rules: 1 })
    const env = { DATABASE_URL: await freshDatabase("init") }
    const sync = await agentsync(["local", "sync", "--to-db"], { cwd: dir, env })
    expect(sync.code, sync.stderr).toBe(0)
    expect((await agentsync(["local", "diff", "--exit-code"], { cwd: dir, env })).code).toBe(0)
    writeFileSync(join(dir, "agentsync.yaml"), "tenant_id: mine\n")
    const again = await agentsync(["init", dir, "--json"])
    expect(again.code).toBe(1)
    expect(JSON.parse(again.stdout).error.message).toMatch(/agentsync\.yaml: already exists/)
    expect(readFileSync(join(dir, "agentsync.yaml"), "utf8")).toBe("tenant_id: mine\n")
  })
})
