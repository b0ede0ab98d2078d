// The line under `agentsync status`'s table: what differs, else which parts were compared.
import { describe, expect, it } from "@effect/vitest"
import { exitOf, summary } from "../../src/cli/status.js"
import type { PartName, PartState, StatusReport } from "../../src/programs/status.js"

const report = (states: Partial<Record<PartName, PartState>>): StatusReport => {
  const parts = (["files", "local", "database", "skills", "server"] as const).map((part) => {
    const state = states[part] ?? "not-configured"
    return { part, compares: "", state, detail: "", elapsed_ms: 0, ...(state === "changes" ? { changes: 2 } : {}) }
  })
  return { parts, elapsed_ms: 0, in_step: parts.every((p) => p.state === "in-step" || p.state === "not-configured") }
}

describe("status summary", () => {
  it("does not call a project with nothing configured in step", () => {
    const r = report({})
    expect(summary(r)).toBe("nothing to compare yet: no part is configured (each line says what sets it up)")
    expect(exitOf(r)).toBe(0)
  })

  it("names the parts compared and the parts left out", () => {
    expect(summary(report({ local: "in-step", server: "in-step" }))).toBe(
      "in step: local, server; not configured: files, database, skills"
    )
  })

  it("says all in step only when every part was compared", () => {
    const all = {
      files: "in-step",
      local: "in-step",
      database: "in-step",
      skills: "in-step",
      server: "in-step"
    } as const
    expect(summary(report(all))).toBe("all in step")
  })

  it("counts the parts that differ and those that cannot tell", () => {
    const r = report({ files: "changes", local: "cannot-tell", server: "in-step" })
    expect(summary(r)).toBe("1 part(s) differ, 1 cannot tell")
    expect(exitOf(r)).toBe(1)
  })
})
