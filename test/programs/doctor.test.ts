// The doctor's services check: what at the top of the tree file sync leaves out, named as push, pull and diff name it,
// and asked of the Workspace in force (a tree held in memory is asked, not the disk); names file sync refuses.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { afterAll, describe, expect } from "vitest"
import { Doctor } from "../../src/programs/doctor.js"
import { make, Workspaces } from "../../src/services/Workspace.js"
import { bytePath, latin1 } from "../support/rawNames.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-doctor-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** A project whose tree holds one agent folder, plus what is given at the top of services/. */
const project = (name: string, top: (services: string) => void) => {
  const dir = join(root, name)
  const services = join(dir, "services")
  mkdirSync(join(services, "agents"), { recursive: true })
  writeFileSync(join(dir, "agentsync.yaml"), "services: services\n")
  top(services)
  return dir
}

/** The doctor's services check, with no server, token or database configured (the environment is not read). */
const servicesCheck = (dir: string) =>
  Effect.map(Doctor.doctor({ services: dir, timeout: "10 seconds" }), (r) =>
    r.checks.find((c) => c.check === "services path")
  ).pipe(
    Effect.provide(Doctor.Default),
    Effect.provide(NodeContext.layer),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
  )

describe("doctor: what file sync leaves out at the top of services/", () => {
  it.effect("names folders with a trailing /, as push, pull and diff do; litter and ignored names are not named", () =>
    Effect.gen(function* () {
      const dir = project("named", (services) => {
        mkdirSync(join(services, "superpowers"))
        writeFileSync(join(services, "superpowers/SKILL.md"), "# not carried\n")
        writeFileSync(join(services, "notes.txt"), "neither\n")
        writeFileSync(join(services, ".DS_Store"), "litter")
        mkdirSync(join(services, "drafts"))
        writeFileSync(join(services, ".agentsyncignore"), "drafts/\n")
      })
      const check = yield* servicesCheck(dir)
      expect(check?.state).toBe("warn")
      expect(check?.detail).toMatch(/; file sync carries only its folders, not notes\.txt, superpowers\/$/)
    })
  )

  it.effect("shows a left-out name's control characters by their bytes: none reaches a terminal raw", () =>
    Effect.gen(function* () {
      const dir = project("escaped", (services) => {
        writeFileSync(join(services, "a\nforged\x1b[2J.txt"), "neither\n")
      })
      const check = yield* servicesCheck(dir)
      expect(check?.detail).toMatch(/; file sync carries only its folders, not a\\x0aforged\\x1b\[2J\.txt$/)
    })
  )

  it.effect("asks the Workspace in force for the top of the tree, not the disk", () =>
    Effect.gen(function* () {
      const dir = project("held", () => {})
      const services = join(dir, "services")
      const onDisk = make(services)
      // The tree in force holds a folder the disk does not.
      const held = {
        ...onDisk,
        listTop: () =>
          Effect.succeed([
            { name: "agents", folder: true },
            { name: "prompts", folder: true }
          ])
      }
      const check = yield* servicesCheck(dir).pipe(
        Effect.provideService(Workspaces, { at: (r) => (r === services ? held : make(r)) })
      )
      expect(check?.detail).toMatch(/not prompts\/$/)
      // And on the disk alone: nothing to name.
      expect((yield* servicesCheck(dir))?.state).toBe("ok")
    })
  )

  it.effect(
    "names that are not UTF-8 file sync refuses and what it leaves out at the top: one warning saying both",
    () =>
      Effect.gen(function* () {
        const dir = project("both", (services) => {
          writeFileSync(join(services, "notes.txt"), "not carried\n")
          mkdirSync(join(services, "config"))
          writeFileSync(bytePath(join(services, "config"), latin1("café.txt")), "x\n")
        })
        const check = yield* servicesCheck(dir)
        expect(check?.state).toBe("warn")
        expect(check?.detail).toMatch(
          /; a name is not UTF-8, which files push, pull and diff refuse: ".*services\/config\/caf\\xe9\.txt"; file sync carries only its folders, not notes\.txt$/
        )
        expect(check?.fix).toMatch(
          /^for each name that is not UTF-8: rename it, .*; move what should travel under one of /
        )
      })
  )
})
