// Special files (FIFOs, sockets) in the services tree, on the real disk: the walk lists them apart and never opens
// one, the local manifest names each as not carried, and a pull's check refuses to write where one stands. A FIFO
// here has a writer waiting on it (a child process): were anything to open it for reading, the writer would finish,
// and nothing can hang waiting for a writer.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { makeMembership } from "../../src/domain/membership.js"
import { specialsOf, walkTree } from "../../src/services/state.js"
import { findObstacles } from "../../src/services/WorkspaceObstacles.js"
import { localManifest, splitLinks } from "../../src/stages/files/bundle.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("special")
const writers: Array<ChildProcess> = []
const servers: Array<net.Server> = []
afterAll(async () => {
  for (const w of writers) w.kill("SIGKILL")
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
})

/** A FIFO at `path` with a writer blocked in its open until some reader opens it. */
const fifoWithWriter = (path: string) => {
  execFileSync("mkfifo", [path])
  const writer = spawn("sh", ["-c", 'printf x > "$1"', "sh", path], { stdio: "ignore" })
  writers.push(writer)
  return writer
}

const socketAt = (path: string) =>
  new Promise<void>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(path, () => {
      servers.push(server)
      resolve()
    })
  })

/** A project: `services/` with a regular file, a FIFO and a socket among the members, a FIFO outside them. */
const project = async () => {
  const root = tempDir("project")
  const services = nodePath.join(root, "services")
  fs.mkdirSync(nodePath.join(services, "config"), { recursive: true })
  fs.mkdirSync(nodePath.join(services, "hooks"))
  fs.mkdirSync(nodePath.join(services, "notes"))
  fs.writeFileSync(nodePath.join(services, "config/a.yaml"), "a: 1\n")
  fs.writeFileSync(nodePath.join(services, ".agentsyncignore"), "*.ignored\n")
  const writer = fifoWithWriter(nodePath.join(services, "config/pipe"))
  fifoWithWriter(nodePath.join(services, "config/x.ignored"))
  fifoWithWriter(nodePath.join(services, "notes/pipe"))
  await socketAt(nodePath.join(services, "hooks/s.sock"))
  return { root, services, writer }
}

describe("special files in the services tree", () => {
  it("the walk lists member FIFOs and sockets apart, by kind, and opens none; ignored and non-member ones are not named", async () => {
    const { services, writer } = await project()
    const listing = walkTree(services, makeMembership("*.ignored\n"))
    expect(listing.map((f) => f.path)).toEqual([".agentsyncignore", "config/a.yaml"])
    expect(specialsOf(listing)).toEqual([
      { path: "config/pipe", kind: "FIFO" },
      { path: "hooks/s.sock", kind: "socket" }
    ])
    // Another listing holds none of them.
    expect(specialsOf([...listing])).toEqual([])
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(writer.exitCode).toBe(null)
  }, 10_000)

  it("the local manifest names each as not carried with its kind, hashes only the regular files, and opens none", async () => {
    const { root, services, writer } = await project()
    const manifest = await Effect.runPromise(
      localManifest({ servicesPath: services, projectRoot: root, writeCache: true })
    )
    expect(manifest.entries.map((e) => e.path)).toEqual([".agentsyncignore", "config/a.yaml"])
    expect(manifest.notCarried.map((n) => ["special" in n ? n.special : "link", n.path])).toEqual([
      ["FIFO", "config/pipe"],
      ["socket", "hooks/s.sock"]
    ])
    expect(manifest.notCarried[0]?.reason).toMatch(/^a FIFO: file sync carries only regular files/)
    // Beside links not carried, in path order.
    fs.symlinkSync("/etc/hostname", nodePath.join(services, "config/b-out"))
    const split = splitLinks(walkTree(services, makeMembership("*.ignored\n")))
    expect(split.notCarried.map((n) => n.path)).toEqual(["config/b-out", "config/pipe", "hooks/s.sock"])
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(writer.exitCode).toBe(null)
  }, 10_000)

  it("a pull's check refuses to write where a FIFO or socket stands, or below one, naming its kind", async () => {
    const { services } = await project()
    expect(findObstacles(services, ["config/pipe", "hooks/s.sock/x.md", "config/new.md"], new Set())).toEqual([
      "config/pipe is a FIFO here; a pull never replaces one",
      "hooks/s.sock is a socket here, but the pull would make it a folder (hooks/s.sock/x.md)"
    ])
  }, 10_000)
})
