/** Test support: the file sync program of a project (`<root>/services`) against a real server, as a test runs it. */
import * as nodePath from "node:path"
import { Effect, Layer, type Redacted } from "effect"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import {
  FileSyncService,
  type FilesOptions,
  type FilesReport,
  layer as fileSyncLayer
} from "../../src/programs/files.js"
import { layer as clientLayer, SyncApiClient, type SyncApiClientShape } from "../../src/services/SyncApi.js"
import { fastRetry } from "../server/support.js"

/**
 * diff, push and pull of the project at `root` with `token`, on the server at `url`; each as an Effect. `upload`,
 * when given, replaces the API client's upload with what it makes of the real one (a transport that loses answers).
 */
export const fileSync = (
  url: string,
  root: string,
  token: Redacted.Redacted<string>,
  upload?: (real: SyncApiClientShape) => SyncApiClientShape["upload"]
) => {
  const services = nodePath.join(root, "services")
  const real = clientLayer({ endpoint: { mode: "direct", origin: url }, token, retry: fastRetry })
  const client =
    upload === undefined
      ? real
      : Layer.effect(
          SyncApiClient,
          Effect.map(SyncApiClient, (c) => ({ ...c, upload: upload(c) }))
        ).pipe(Layer.provide(real))
  const layer = fileSyncLayer.pipe(
    Layer.provide(client),
    Layer.provide(
      Layer.succeed(CurrentConfig, new SyncConfig({ projectRoot: root, servicesPath: services, directUrl: url, token }))
    )
  )
  const go = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) =>
    Effect.flatMap(FileSyncService, f).pipe(Effect.provide(layer))
  return {
    diff: () => go((s) => s.diff()),
    /** `files diff -p`'s patches of a diff's report. */
    patches: (r: FilesReport) => go((s) => s.patches(r)),
    push: (o: FilesOptions = {}) => go((s) => s.push(o)),
    pull: (o: FilesOptions = {}) => go((s) => s.pull(o)),
    pullEither: (o: FilesOptions = {}) => Effect.either(go((s) => s.pull(o))),
    pushEither: (o: FilesOptions = {}) => Effect.either(go((s) => s.push(o)))
  }
}
