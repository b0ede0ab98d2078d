import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { agentsync, REPO } from "../support/cli.js"

const dir = mkdtempSync(join(tmpdir(), "agentsync-demo-test-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("agentsync demo (built CLI, embedded defaults, no DATABASE_URL)", () => {
  it("runs the whole loop and leaves the results it claims", async () => {
    const work = join(dir, "work")
    const r = await agentsync(["demo", "--dir", work], { cwd: dir })
    expect(r.stderr).toBe("")
    expect(r.code, r.stdout).toBe(0)
    // The demo works on the example as it is: every file of it, dotfiles such as .agentsyncignore included.
    const example = join(REPO, "examples/project")
    const files = readdirSync(example, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(example.length + 1))
    expect(files).toContain("services/.agentsyncignore")
    expect(files.filter((f) => !existsSync(join(work, "project", f)))).toEqual([])
    // Local sync: the SQL edit came back to disk.
    expect(r.stdout).toContain("~ agents support")
    expect(readFileSync(join(work, "project/services/agents/support/config.yaml"), "utf8")).toContain(
      "description: Answers questions; edited in the database."
    )
    // File sync: the second copy pulled the edit pushed from the first.
    expect(r.stdout).toContain("the second copy has the edit: yes")
    const post = "services/content/blog/hello-world/index.md"
    expect(readFileSync(join(work, "copy", post), "utf8")).toBe(readFileSync(join(work, "project", post), "utf8"))
    expect(readFileSync(join(work, "copy", post), "utf8")).toContain("An edit made on the laptop.")
    // Skill sync: the home edit landed as a commit in the bare remote.
    expect(r.stdout).toMatch(/sync: skills\/kb-search\n\s+skills: first version/)
    expect(existsSync(join(work, "home/.claude/skills/cite-sources/SKILL.md"))).toBe(true)
    // Scheduled jobs: the example's jobs listed with their next fires, one run now and in the history.
    expect(r.stdout).toMatch(
      /content_sync +local-sync +cron \*\/15 \* \* \* \* +UTC +\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z/
    )
    expect(r.stdout).toMatch(/access_control_sync +succeeded .*manual/s)
    // The token was never printed.
    expect(r.stdout).not.toMatch(/"token"/)
  }, 300_000)
})
