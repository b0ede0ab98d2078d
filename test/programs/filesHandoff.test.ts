// The settled check hands its listing to the program of the same process: used under the same mark, never after
// the base was rewritten in between (as a pull between the check and the program's lock would).
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { handOff } from "../../src/services/state.js"
import { checkSettled } from "../../src/stages/files/settledCheck.js"
import { serverForFile } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { tempDirs } from "../support/tree.js"

const server = serverForFile("files_handoff")

const tempDir = tempDirs("files-handoff")
const sample: Record<string, string> = {
  "agents/a/config.yaml": "id: a\nname: A\n",
  "skills/s/SKILL.md": "# S\n",
  "config/app.yaml": "x: 1\n"
}
const past = new Date(Date.now() - 60_000)

const write = async (root: string, files: Record<string, string>) => {
  for (const [p, text] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    await fs.mkdir(nodePath.dirname(full), { recursive: true })
    await fs.writeFile(full, text)
    // Older than the racy window, so that the run may keep a settled mark.
    await fs.utimes(full, past, past)
  }
}

const push = (root: string, token: Redacted.Redacted<string>) =>
  Effect.runPromise(fileSync(server.url, root, token).push())

/** A project pushed and settled, then edited; the settled check run on it (handing its listing off), then `later`. */
const handedThen = async (
  name: string,
  later: (root: string) => Promise<void>,
  edit = (root: string) => write(root, { "config/app.yaml": "x: 22\n" })
) => {
  const t = await server.createTenant(name)
  const root = tempDir("project")
  await write(root, sample)
  await push(root, t.token)
  await edit(root)
  let handed = false
  const report = await checkSettled({
    command: "push",
    dryRun: false,
    cwd: root,
    services: undefined,
    env: { ...process.env, AGENTSYNC_TOKEN: Redacted.value(t.token) },
    onListing: (listing) => {
      handed = true
      handOff(listing)
    }
  })
  expect([report, handed]).toEqual([undefined, true])
  await later(root)
  return push(root, t.token)
}

describe("the listing handed from the settled check", () => {
  it("is what the program plans from under the same mark: a file edited after it waits for the next run", async () => {
    const r = await handedThen("handoff-used", (root) => write(root, { "skills/s/SKILL.md": "# S, edited\n" }))
    expect(r.files.map((f) => f.path)).toEqual(["config/app.yaml"])
  })

  it("is not used once the base was rewritten after it: the program lists the tree again", async () => {
    const r = await handedThen("handoff-void", async (root) => {
      await write(root, { "skills/s/SKILL.md": "# S, edited\n" })
      const base = nodePath.join(root, ".agentsync", "files-base.json")
      await fs.writeFile(base, await fs.readFile(base))
    })
    expect(r.files.map((f) => f.path)).toEqual(["config/app.yaml", "skills/s/SKILL.md"])
  })

  it("carries what the server's 304 said it keeps: an executable and a link changed since the mark are pushed", async () => {
    const r = await handedThen(
      "handoff-kinds",
      async () => {},
      async (root) => {
        await write(root, { "config/run.sh": "#!/bin/sh\necho run\n" })
        await fs.chmod(nodePath.join(root, "services", "config", "run.sh"), 0o755)
        await fs.symlink("run.sh", nodePath.join(root, "services", "config", "start.sh"))
      }
    )
    expect(r.files.map((f) => f.path)).toEqual(["config/run.sh", "config/start.sh"])
  })

  it("carries every form of upload the server's 304 announced, as a full answer does", async () => {
    const t = await server.createTenant("handoff-uploads")
    const root = tempDir("project")
    await write(root, sample)
    await push(root, t.token)
    await write(root, { "config/app.yaml": "x: 22\n" })
    let answer: unknown
    await checkSettled({
      command: "push",
      dryRun: false,
      cwd: root,
      services: undefined,
      env: { ...process.env, AGENTSYNC_TOKEN: Redacted.value(t.token) },
      onListing: (listing) => {
        answer = listing.answer
      }
    })
    expect(answer).toMatchObject({ uploads: "trailer" })
  })
})
