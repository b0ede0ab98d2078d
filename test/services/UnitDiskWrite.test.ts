// A unit write given no bytes for a file of its content: a defect named as the pure `held` names it (a fault of the
// caller, not a state of the disk), and nothing written.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { afterAll } from "vitest"
import { writeUnit } from "../../src/services/UnitDiskWrite.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-unitwrite-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const DIGEST = "a".repeat(64)

describe("UnitDiskWrite.writeUnit", () => {
  it.effect("writes a new folder unit from the bytes it is given", () =>
    Effect.gen(function* () {
      const unit = join(root, "given")
      yield* writeUnit({
        root: unit,
        folder: true,
        previous: undefined,
        content: { "SKILL.md": DIGEST },
        bytes: new Map([["SKILL.md", new TextEncoder().encode("# given\n")]]),
        stopAt: root
      })
      expect(readFileSync(join(unit, "SKILL.md"), "utf8")).toBe("# given\n")
    })
  )

  it.effect("dies naming the file it lost track of when a file of the content has no bytes, and writes nothing", () =>
    Effect.gen(function* () {
      const unit = join(root, "lost")
      const exit = yield* Effect.exit(
        writeUnit({
          root: unit,
          folder: true,
          previous: undefined,
          content: { "SKILL.md": DIGEST, "scripts/run.sh": `${DIGEST}+x` },
          bytes: new Map([["SKILL.md", new TextEncoder().encode("# kept\n")]]),
          stopAt: root
        })
      )
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toContain(
        `lost track of the bytes of scripts/run.sh in a unit write of ${unit}`
      )
      expect(existsSync(unit)).toBe(false)
    })
  )

  it.effect(
    "a removed unit takes the folders it leaves empty up to stopAt, and stopAt itself only without keepStopAt",
    () =>
      Effect.gen(function* () {
        for (const keepStopAt of [false, true]) {
          const top = join(root, `top-${keepStopAt}`)
          const bytes = new Map([["scripts/run.sh", new TextEncoder().encode("echo\n")]])
          const write = (content: Record<string, string> | undefined, previous: Record<string, string> | undefined) =>
            writeUnit({ root: top, folder: true, previous, content, bytes, stopAt: top, keepStopAt })
          yield* write({ "scripts/run.sh": DIGEST }, undefined)
          yield* write(undefined, { "scripts/run.sh": DIGEST })
          expect(existsSync(join(top, "scripts"))).toBe(false)
          // A repository's top folder (a local source that is one skill) stays, empty.
          expect(existsSync(top)).toBe(keepStopAt)
        }
      })
  )
})
