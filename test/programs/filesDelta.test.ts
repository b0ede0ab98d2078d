// A push from the settled mark's listing (stages/files/delta.ts) against the same push planned in full: the same
// report, base and kept head, and a mark the settled check then answers from; only the changed files are hashed.
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { FileState, make as makeFileState, type StateFile } from "../../src/services/FileState.js"
import { HEAD_FILE } from "../../src/services/state.js"
import type { Contents } from "../../src/services/WorkspaceWrite.js"
import { checkSettled } from "../../src/stages/files/settledCheck.js"
import { serverForFile } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { readKeptHead } from "../support/keptHead.js"
import { tempDirs } from "../support/tree.js"

const server = serverForFile("files_delta")

const tempDir = tempDirs("files-delta")
const sample: Record<string, string> = {
  "agents/a/config.yaml": "id: a\nname: A\n",
  "skills/s/SKILL.md": "# S\n",
  "config/app.yaml": "x: 1\n",
  "config/run.sh": "#!/bin/sh\n"
}

const write = async (root: string, files: Record<string, string>, at: Date) => {
  for (const [p, text] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    await fs.mkdir(nodePath.dirname(full), { recursive: true })
    await fs.writeFile(full, text)
    // Older than any listing's stamp, so that the run may keep a settled mark.
    await fs.utimes(full, at, at)
  }
}
const state = (root: string, name: string) => nodePath.join(root, ".agentsync", name)
const json = async (root: string, name: string) => JSON.parse(await fs.readFile(state(root, name), "utf8"))

/** A project pushed and settled, edited, its hash cache gone, and pushed again; `full` also loses the mark's listing. */
const run = async (name: string, full: boolean) => {
  const t = await server.createTenant(name)
  const root = tempDir("project")
  await write(root, sample, new Date(Date.now() - 120_000))
  const sync = fileSync(server.url, root, t.token)
  await Effect.runPromise(sync.push())
  const later = new Date(Date.now() - 60_000)
  await write(root, { "config/app.yaml": "x: 22\n", "skills/t/SKILL.md": "# T\n" }, later)
  await fs.chmod(nodePath.join(root, "services", "config", "run.sh"), 0o755)
  await fs.rm(nodePath.join(root, "services", "agents", "a", "config.yaml"))
  await fs.rm(state(root, "hash-cache.json"))
  if (full) await fs.rm(state(root, "files-settled-listing.txt"))
  const report = await Effect.runPromise(sync.push({ delete: true }))
  const base = await json(root, "files-base.json")
  const head = readKeptHead(state(root, "remote-manifest.json"))
  const settled = await checkSettled({
    command: "push",
    dryRun: false,
    cwd: root,
    services: undefined,
    env: { ...process.env, AGENTSYNC_TOKEN: Redacted.value(t.token) }
  })
  return { report, base, head, settled }
}

describe("a push from the settled mark's listing", () => {
  it("reports and keeps what the full run does, hashing only what changed", async () => {
    const delta = await run("delta-used", false)
    const full = await run("delta-full", true)
    // The changed, the new and the chmodded file: the full run, without a hash cache, hashes all four.
    expect([delta.report.files_hashed, full.report.files_hashed]).toEqual([3, 4])
    const same = ({ revision, remote_revision, files_hashed, ...rest }: typeof delta.report) => rest
    expect(same(delta.report)).toEqual(same(full.report))
    expect(delta.report.files.map((f) => [f.path, f.action])).toEqual([
      ["agents/a/config.yaml", "delete-remote"],
      ["config/app.yaml", "upload"],
      ["config/run.sh", "upload"],
      ["skills/t/SKILL.md", "upload"]
    ])
    expect([delta.base.paths, delta.base.versions]).toEqual([full.base.paths, full.base.versions])
    expect(delta.head.lines).toEqual(full.head.lines)
    expect([delta.head.checksum, delta.head.files]).toEqual([full.head.checksum, full.head.files])
    // Both keep a mark the settled check answers from: nothing changed since.
    expect(delta.settled?.counts).toEqual({ added: 0, modified: 0, removed: 0, unchanged: 4 })
    expect(full.settled?.counts).toEqual({ added: 0, modified: 0, removed: 0, unchanged: 4 })
  })
})

describe("a push after a run that kept the head", () => {
  it("keeps the next head spliced from the kept copy's bytes: the new tree's lines", async () => {
    const t = await server.createTenant("delta-spliced")
    const root = tempDir("spliced")
    await write(root, sample, new Date(Date.now() - 120_000))
    const sync = fileSync(server.url, root, t.token)
    await Effect.runPromise(sync.push())
    await write(root, { "config/app.yaml": "x: 3\n" }, new Date(Date.now() - 60_000))
    // The state files as the push writes them, each write's pieces as given.
    const writes: Array<Contents> = []
    const real = makeFileState(root)
    const state = {
      ...real,
      write: (name: StateFile, text: Contents) => {
        if (name === HEAD_FILE) writes.push(text)
        return real.write(name, text)
      }
    }
    await Effect.runPromise(sync.push().pipe(Effect.provideService(FileState, { at: () => state })))
    expect(writes).toHaveLength(1)
    // The header is text; the lines are byte pieces of the copy with the changed line spliced in.
    const [text] = writes
    expect(Array.isArray(text) && text.slice(1).every((p) => p instanceof Uint8Array)).toBe(true)
    const head = readKeptHead(state.path(HEAD_FILE))
    expect(head.lines.map(([p]) => p)).toEqual(Object.keys(sample).sort())
    expect(head.lines.find(([p]) => p === "config/app.yaml")?.[1]).toBe(5)
  })
})
