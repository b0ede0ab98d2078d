import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import * as OpenApi from "@effect/platform/OpenApi"
import { afterAll, describe, expect, it } from "vitest"
import { AgentsyncApi } from "../../src/api/index.js"

const run = promisify(execFile)
const doc = OpenApi.fromApi(AgentsyncApi)
const dir = mkdtempSync(join(tmpdir(), "agentsync-openapi-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods as Record<string, OpenApi.OpenAPISpecOperation>).map(([method, op]) => ({
    name: `${method.toUpperCase()} ${path}`,
    op
  }))
)

describe("the API document", () => {
  it("passes `redocly lint` with the recommended rules (the pinned dev dependency)", async () => {
    const file = join(dir, "openapi.json")
    writeFileSync(file, JSON.stringify(doc))
    const redocly = join(process.cwd(), "node_modules", "@redocly", "cli", "bin", "cli.js")
    const result = await run(
      process.execPath,
      [redocly, "lint", "--config", "redocly.yaml", "--format", "json", file],
      {
        env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" },
        maxBuffer: 16 * 1024 * 1024
      }
    ).catch((e: { stdout: string; stderr: string }) => e)
    const report = JSON.parse(result.stdout) as {
      totals: { errors: number; warnings: number; ignored: number }
      problems: ReadonlyArray<{ ruleId: string; message: string; location: ReadonlyArray<{ pointer: string }> }>
    }
    const problems = report.problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? "?"}`)
    expect(problems).toEqual([])
    expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 })
  })

  it("gives every operation a summary, a description, and its failures with their statuses and schemas", () => {
    expect(operations.length).toBeGreaterThan(40)
    for (const { name, op } of operations) {
      expect(op.summary, name).toMatch(/\w/)
      expect(op.description, name).toMatch(/\w{3}/)
      const failures = Object.entries(op.responses).filter(([status]) => Number(status) >= 400)
      expect(failures.length, name).toBeGreaterThan(0)
      for (const [status, response] of failures) {
        expect(response.description, `${name} ${status}`).not.toBe("Error")
        expect(response.content?.["application/json"]?.schema, `${name} ${status}`).toBeDefined()
      }
    }
    expect(doc.servers?.length).toBeGreaterThan(0)
    for (const tag of doc.tags) expect(tag.description, tag.name).toMatch(/\w/)
  })

  it("names each authenticated failure: 401 everywhere a token is needed, 403 on the relay family", () => {
    for (const { name, op } of operations) {
      const authenticated = op.security.length > 0
      expect(Object.hasOwn(op.responses, "401"), name).toBe(authenticated)
      expect(Object.hasOwn(op.responses, "403"), name).toBe(name.includes("/cloud/tenants/{tenantId}/"))
    }
  })
})
