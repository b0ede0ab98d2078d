/** Test support for deploys: stub programs on PATH that record their calls, a project with a deploy: block, a health server. */
import { createHash } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const STUB = fileURLToPath(new URL("./stub-program.mjs", import.meta.url))

export interface Call {
  readonly name: string
  readonly args: ReadonlyArray<string>
  readonly stdin: string
  readonly env: Record<string, string>
  readonly cwd: string
}

/** A folder with stub `docker`, `hook` and `make` programs in `bin/`; each call is a JSON line in `calls.jsonl`. */
export const makeStubs = (names: ReadonlyArray<string> = ["docker", "hook", "make"]) => {
  const dir = mkdtempSync(join(tmpdir(), "agentsync-stubs-"))
  const bin = join(dir, "bin")
  mkdirSync(bin)
  for (const name of names) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${STUB}" ${name} "$@"\n`)
    chmodSync(join(bin, name), 0o755)
  }
  const file = (name: string) => join(dir, name)
  return {
    dir,
    bin,
    /**
     * The calls recorded so far, in order. A test polls this while a stub runs: what follows the last line break is a
     * record still being appended (read half-written under load, it failed to parse), not yet a call.
     */
    calls: (): ReadonlyArray<Call> =>
      existsSync(file("calls.jsonl"))
        ? readFileSync(file("calls.jsonl"), "utf8")
            .split("\n")
            .slice(0, -1)
            .map((l) => JSON.parse(l) as Call)
        : [],
    reset: () => rmSync(file("calls.jsonl"), { force: true }),
    /** Makes `sub` (a docker subcommand, or `hook`) exit with `code`, only for arguments holding `match` if given; undefined: succeed again. */
    failOn: (sub: string | undefined, code = 1, match = "") =>
      sub === undefined
        ? rmSync(file("fail"), { force: true })
        : writeFileSync(file("fail"), `${sub} ${code} ${match}`.trim()),
    sleepOn: (sub: string | undefined, seconds = 30) =>
      sub === undefined ? rmSync(file("sleep"), { force: true }) : writeFileSync(file("sleep"), `${sub} ${seconds}`),
    remove: () => rmSync(dir, { recursive: true, force: true })
  }
}
export type Stubs = ReturnType<typeof makeStubs>

/** The digest the stub `docker push` reports for an image. */
export const stubDigest = (image: string) => `sha256:${createHash("sha256").update(`push ${image}`).digest("hex")}`

/** A project folder with a Dockerfile and an agentsync.yaml holding `yaml`. */
export const makeProject = (yaml: string, withDockerfile = true) => {
  const root = mkdtempSync(join(tmpdir(), "agentsync-deploy-project-"))
  writeFileSync(join(root, "agentsync.yaml"), yaml)
  if (withDockerfile) writeFileSync(join(root, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n")
  writeFileSync(join(root, "hello.txt"), "hello\n")
  return root
}

/** An HTTP server answering health checks: 200, or 503 while `unhealthy(path)` says so. */
export const healthServer = async (unhealthy: (path: string) => boolean) => {
  const hits: Array<string> = []
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? "")
    const bad = unhealthy(req.url ?? "/")
    res.writeHead(bad ? 503 : 200, { "content-type": "text/plain" }).end(bad ? "starting" : "ok")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise<void>((r) => server.close(() => r()))
  }
}
