// A pull interrupted in the middle of its download (Ctrl-C): the staged writer's open descriptor is closed, its
// writes in flight are waited for, the staging folder goes, and nothing in the tree has changed.
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import { FileEntry } from "../../../src/domain/model.js"
import { ApiError } from "../../../src/errors.js"
import { Transient } from "../../../src/services/SyncApi.js"
import { apply, type Download } from "../../../src/stages/files/apply.js"
import { record, sha, tarGz } from "../../support/hostile.js"
import { openUnder, tempDirs, treeFiles } from "../../support/tree.js"

const tempDir = tempDirs("apply-interrupt")
const isTransient = (e: unknown): e is Transient => e instanceof Transient

describe("apply, interrupted", () => {
  it.live("mid-download: no staging folder, no open descriptor, the tree unchanged", () =>
    Effect.gen(function* () {
      const root = tempDir("project")
      const services = nodePath.join(root, "services")
      fs.mkdirSync(nodePath.join(services, "skills/s"), { recursive: true })
      fs.writeFileSync(nodePath.join(services, "skills/s/SKILL.md"), "old\n")
      const before = treeFiles(services)
      // A small file (written whole once its hash checks out), then a large one (written as it arrives) cut off
      // half way: random bytes, so half the archive is about half the large file.
      const small = Buffer.from("new\n")
      const large = randomBytes(3 * 1024 * 1024)
      const archive = tarGz(record({ path: "skills/s/SKILL.md" }, small), record({ path: "data/big.bin" }, large))
      const reached = yield* Deferred.make<void>()
      const download: Download = (_missing, consume) =>
        consume(
          Stream.concat(
            Stream.make(archive.subarray(0, archive.length >> 1)),
            // The rest never comes: the run waits here until it is interrupted.
            Stream.fromEffect(Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never))
          )
        ).pipe(Effect.catchIf(isTransient, (t) => Effect.fail(new ApiError({ status: 0, reason: t.reason }))))
      const fiber = yield* Effect.fork(
        apply({
          projectRoot: root,
          servicesPath: services,
          download,
          write: [
            new FileEntry({ path: "skills/s/SKILL.md", size: small.length, sha256: sha(small) }),
            new FileEntry({ path: "data/big.bin", size: large.length, sha256: sha(large) })
          ],
          delete: []
        })
      )
      yield* Deferred.await(reached)
      const state = nodePath.join(root, ".agentsync")
      const staging = fs.readdirSync(state).filter((n) => n.startsWith("staging-"))
      // The interruption comes while the large file is open in the staging folder.
      expect(staging).toHaveLength(1)
      expect(openUnder(nodePath.join(state, staging[0]!))).toContain(nodePath.join(state, staging[0]!, "data/big.bin"))
      yield* Fiber.interrupt(fiber)
      expect(fs.readdirSync(state).filter((n) => n.startsWith("staging-"))).toEqual([])
      expect(openUnder(root)).toEqual([])
      expect(treeFiles(services)).toEqual(before)
      expect(fs.existsSync(nodePath.join(state, "pull-journal.json"))).toBe(false)
    })
  )
})
