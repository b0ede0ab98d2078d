// The Dockerfile, checked without a container engine: parsed into stages and instructions, its rules asserted, and its
// HEALTHCHECK command run against a real server.
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { REPO } from "../support/cli.js"
import { TestTenantServer } from "./support.js"

interface Instruction {
  readonly op: string
  readonly args: string
  readonly line: number
}

/** Instructions with their continuation lines joined; comments and blank lines dropped. */
const parse = (text: string): ReadonlyArray<Instruction> => {
  const out: Array<Instruction> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const start = i
    let line = lines[i]!
    if (/^\s*(#|$)/.test(line)) continue
    while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line)
    if (!m) throw new Error(`Dockerfile:${start + 1}: not an instruction: ${line}`)
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 })
  }
  return out
}

const stages = (instructions: ReadonlyArray<Instruction>) => {
  const result: Array<{ from: string; name: string | undefined; body: Array<Instruction> }> = []
  for (const ins of instructions) {
    if (ins.op === "FROM") {
      const [image, as, name] = ins.args.split(/\s+/)
      result.push({ from: image!, name: as?.toUpperCase() === "AS" ? name : undefined, body: [] })
    } else {
      if (result.length === 0) throw new Error(`Dockerfile:${ins.line}: ${ins.op} before FROM`)
      result.at(-1)!.body.push(ins)
    }
  }
  return result
}

const KNOWN = new Set([
  "FROM",
  "RUN",
  "CMD",
  "LABEL",
  "EXPOSE",
  "ENV",
  "ADD",
  "COPY",
  "ENTRYPOINT",
  "VOLUME",
  "USER",
  "WORKDIR",
  "ARG",
  "STOPSIGNAL",
  "HEALTHCHECK",
  "SHELL"
])

const text = readFileSync(join(REPO, "Dockerfile"), "utf8")
const instructions = parse(text)
const all = stages(instructions)
const final = all.at(-1)!

describe("Dockerfile", () => {
  it("uses only known instructions, and images pinned to a tag (never latest)", () => {
    for (const i of instructions) expect(KNOWN.has(i.op), `line ${i.line}: ${i.op}`).toBe(true)
    for (const s of all) expect(s.from).toMatch(/^[a-z0-9./-]+:(?!latest$)[\w.-]+$/)
  })

  it("is multi-stage: the final stage copies only from a named earlier stage, whose sources exist in the repo", () => {
    expect(all.length).toBeGreaterThanOrEqual(2)
    const names = new Set(all.slice(0, -1).map((s) => s.name))
    for (const c of final.body.filter((i) => i.op === "COPY")) {
      const from = /--from=(\S+)/.exec(c.args)
      expect(from, `line ${c.line}: the final stage copies from the build context`).not.toBeNull()
      expect(names.has(from![1]!)).toBe(true)
    }
    for (const s of all.slice(0, -1))
      for (const c of s.body.filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))) {
        const sources = c.args.split(/\s+/).slice(0, -1)
        for (const src of sources) expect(existsSync(join(REPO, src)), `line ${c.line}: ${src}`).toBe(true)
      }
    const scripts = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).scripts as Record<string, string>
    for (const r of instructions.filter((i) => i.op === "RUN"))
      for (const [, name] of r.args.matchAll(/npm run (\S+)/g)) expect(scripts[name!], `npm run ${name}`).toBeDefined()
  })

  it("runs as a non-root user, serves on the port it exposes, and puts no secret in the image", () => {
    const users = final.body.filter((i) => i.op === "USER")
    expect(users.length).toBeGreaterThan(0)
    expect(users.at(-1)!.args).not.toMatch(/^(root|0)(:|$)/)
    const env = final.body
      .filter((i) => i.op === "ENV")
      .map((i) => i.args)
      .join(" ")
    const port = /PORT=(\d+)/.exec(env)?.[1]
    expect(port).toBeDefined()
    expect(final.body.find((i) => i.op === "EXPOSE")?.args).toBe(port)
    for (const i of instructions.filter((i) => i.op === "ENV" || i.op === "ARG"))
      expect(i.args, `line ${i.line}`).not.toMatch(/(TOKEN|PASSWORD|SECRET|DATABASE_URL)=/)
    const entry = JSON.parse(final.body.find((i) => i.op === "ENTRYPOINT")!.args) as Array<string>
    const cmd = JSON.parse(final.body.find((i) => i.op === "CMD")!.args) as Array<string>
    expect([...entry, ...cmd]).toContain("serve")
  })
})

layer(TestTenantServer.layer("dockerfile"), { excludeTestServices: true })("its HEALTHCHECK", (it) => {
  const check = final.body.find((i) => i.op === "HEALTHCHECK")!
  const argv = JSON.parse(/CMD\s+(\[.*\])$/.exec(check?.args ?? "")?.[1] ?? "[]") as Array<string>

  // Asynchronously: the server under test runs in this process.
  const run = (port: string) =>
    new Promise<number | null>((resolve, reject) => {
      const child = spawn(argv[0] === "node" ? process.execPath : argv[0]!, argv.slice(1), {
        env: { ...process.env, PORT: port },
        stdio: "ignore",
        timeout: 30_000
      })
      child.on("error", reject)
      child.on("close", resolve)
    })

  it.effect(
    "asks /readyz with a timeout and passes against a ready server, fails where none answers",
    () =>
      Effect.gen(function* () {
        const server = yield* TestTenantServer
        expect(check.args).toMatch(/--timeout=\d+s/)
        expect(argv.join(" ")).toContain("/readyz")
        expect(yield* Effect.promise(() => run(new URL(server.url).port))).toBe(0)
        const net = yield* Effect.promise(() => import("node:net"))
        const closed = yield* Effect.async<number>((resume) => {
          const s = net.createServer().listen(0, "127.0.0.1", () => {
            const port = (s.address() as { port: number }).port
            s.close(() => resume(Effect.succeed(port)))
          })
        })
        expect(yield* Effect.promise(() => run(String(closed)))).toBe(1)
      }),
    60_000
  )
})
