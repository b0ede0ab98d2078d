// What a push, pull or diff names as left out at the top of services/: asked of the Workspace in force, so a tree
// held in memory answers for itself (the settled start path, which loads no Effect, lists the disk on its own).
import { join } from "node:path"
import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import { makeMembership } from "../../src/domain/membership.js"
import { noteLeftOut } from "../../src/programs/files/prepare.js"
import { make, Workspaces } from "../../src/services/Workspace.js"

describe("a file sync run's left_out", () => {
  it.effect("is what the Workspace in force lists at its top, under its membership; nothing is read from disk", () =>
    Effect.gen(function* () {
      // A tree that exists nowhere on disk.
      const services = join("/nonexistent", "agentsync-held", "services")
      const config = SyncConfig.builder(services).build()
      const asked: Array<string> = []
      const held = {
        ...make(services),
        membership: () => Effect.succeed(makeMembership("drafts/\n")),
        listTop: () =>
          Effect.sync(() => {
            asked.push("listTop")
            return [
              { name: "skills", folder: true },
              { name: "prompts", folder: true },
              { name: "notes.md", folder: false },
              { name: "drafts", folder: true },
              { name: ".DS_Store", folder: false }
            ]
          })
      }
      const report = yield* noteLeftOut({ revision: "r" }).pipe(
        Effect.provideService(CurrentConfig, config),
        Effect.provideService(Workspaces, { at: (r) => (r === services ? held : make(r)) })
      )
      expect(report).toEqual({ revision: "r", left_out: ["notes.md", "prompts/"] })
      expect(asked).toEqual(["listTop"])
      // A tree with nothing left out: the report as it was, without the field.
      const none = yield* noteLeftOut({ revision: "r" }).pipe(
        Effect.provideService(CurrentConfig, config),
        Effect.provideService(Workspaces, {
          at: () => ({ ...held, listTop: () => Effect.succeed([{ name: "agents", folder: true }]) })
        })
      )
      expect(none).toEqual({ revision: "r" })
    })
  )
})
