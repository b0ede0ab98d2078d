// A push makes what it keeps after the answer while the server works on its upload: the signal to start is given
// once the body's chunks were all written to the connection, not when the body was only queued before it.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Layer, Stream } from "effect"
import { UploadResult } from "../../../src/api/files.js"
import { SyncApiClient, type SyncApiClientShape } from "../../../src/services/SyncApi.js"
import { upload } from "../../../src/stages/files/upload.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("upload-sent")

describe("the upload's sent signal", () => {
  it.live("is given once every chunk of the body was written, and not before", () =>
    Effect.gen(function* () {
      const services = nodePath.join(tempDir("push"), "services")
      fs.mkdirSync(nodePath.join(services, "agents"), { recursive: true })
      fs.writeFileSync(nodePath.join(services, "agents", "a.md"), "hello\n")
      const sent = yield* Deferred.make<void>()
      const seen: Array<string> = []
      const client = {
        baseUrl: "http://127.0.0.1:1/api/v1/sync",
        compress: "never",
        serverFormats: () => [],
        // A connection that takes the whole body first and writes it out later, one chunk at a time.
        upload: (
          body: () => Stream.Stream<Uint8Array, unknown>,
          _key: string,
          _f: unknown,
          written?: (c: Uint8Array) => void
        ) =>
          Effect.gen(function* () {
            const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(body()))
            expect(chunks.length).toBeGreaterThan(0)
            for (const chunk of chunks) {
              yield* Effect.sleep("5 millis")
              seen.push(`done before ${yield* Deferred.isDone(sent)}`)
              written?.(chunk)
            }
            seen.push(`done after ${yield* Deferred.isDone(sent)}`)
            return new UploadResult({ revision: "r-2", parent: "r-1", created: true, files: 1, received: 1 })
          })
      } as unknown as SyncApiClientShape // Only what the upload stage asks of a client.
      const entry = {
        path: "agents/a.md",
        size: 6,
        sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
      }
      yield* upload({ servicesPath: services, base: "r-1", remote: [], set: [entry], delete: [], sent }).pipe(
        Effect.provide(Layer.succeed(SyncApiClient, client))
      )
      expect(seen.every((s) => s === "done before false" || s === "done after true")).toBe(true)
      expect(seen.at(-1)).toBe("done after true")
    })
  )
})
