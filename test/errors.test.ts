import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import {
  ApiError,
  DatabaseError,
  ExitCode,
  exitCodeOf,
  IoError,
  ioError,
  isMissing,
  isSyncError,
  MissingConfig,
  PartialImport
} from "../src/errors.js"

const failure = (f: () => unknown): unknown => {
  try {
    f()
  } catch (e) {
    return e
  }
  throw new Error("expected a failure")
}

describe("the error family", () => {
  it("every class's name is its tag, and isSyncError knows every class and nothing else", () => {
    const errors = [
      new DatabaseError({ reason: "x" }),
      new IoError({ path: "p", reason: "x" }),
      new PartialImport({ completed: 1, total: 2, reason: "x" }),
      new ApiError({ status: 500, reason: "x" }),
      new MissingConfig({ key: "K", reason: "x" })
    ]
    for (const e of errors) {
      expect(e._tag).toBe(e.constructor.name)
      expect(isSyncError(e)).toBe(true)
    }
    expect(isSyncError({ _tag: "IoError", path: "p", reason: "x" })).toBe(false)
    expect(isSyncError(new Error("x"))).toBe(false)
    expect(exitCodeOf(new MissingConfig({ key: "K", reason: "x" }))).toBe(ExitCode.Usage)
  })

  it("an IoError's kind comes from its cause's errno; the message keeps the cause's words without the code", () => {
    const dir = mkdtempSync(join(tmpdir(), "agentsync-errors-"))
    const gone = failure(() => readFileSync(join(dir, "gone")))
    const notDir = failure(() => readFileSync(join(dir, "gone", "x")))
    const isDir = failure(() => readFileSync(dir))
    expect(ioError(join(dir, "gone"), "cannot read")(gone).kind).toBe("NotFound")
    expect(ioError(dir, "cannot read")(isDir).kind).toBe("IsADirectory")
    expect(isMissing(gone) && isMissing(notDir)).toBe(true)
    expect(isMissing(isDir)).toBe(false)
    rmSync(dir, { recursive: true, force: true })
    const e = ioError("a/b", "cannot read")(gone)
    expect(e.message).toMatch(/^a\/b: cannot read: no such file or directory/)
    expect(new IoError({ path: "p", reason: "x" }).kind).toBe("Other")
  })

  it("a PartialImport crosses the wire as itself, its cause left behind", () => {
    const e = new PartialImport({ completed: 3, total: 5, reason: "contexts rolled back", cause: new Error("secret") })
    const wire = Schema.encodeSync(PartialImport)(e)
    expect(JSON.parse(JSON.stringify(wire))).toEqual({
      _tag: "PartialImport",
      completed: 3,
      total: 5,
      reason: "contexts rolled back"
    })
    const back = Schema.decodeUnknownSync(PartialImport)(wire)
    expect(back).toBeInstanceOf(PartialImport)
    expect([back.completed, back.total, back.cause]).toEqual([3, 5, undefined])
  })

  it("ApiError crosses the wire compatibly: a body without `kind` (an older server) is a Status failure; a new body only adds `kind`", () => {
    const old = Schema.decodeUnknownSync(ApiError)({ _tag: "ApiError", status: 500, reason: "disk full" })
    expect(old.kind).toBe("Status")
    expect(old.message).toBe("API error 500: disk full")
    const sent = Schema.encodeSync(ApiError)(new ApiError({ status: 500, reason: "disk full" }))
    expect(sent).toEqual({ _tag: "ApiError", status: 500, reason: "disk full", kind: "Status" })
    const unreachable = new ApiError({ kind: "Transport", status: 0, reason: "ECONNREFUSED", url: "http://h" })
    expect(unreachable.message).toBe("the connection to the API failed (http://h): ECONNREFUSED")
  })
})
