/** The deploy handlers, written once for both URL families, over the DeployStore and the ReleaseRunner. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer, Option } from "effect"
import { type Caller, NotFound } from "../../api/common.js"
import { type DeployRequest, RegistryCredential, type RollbackRequest } from "../../api/deploy.js"
import * as Shell from "../../services/Shell.js"
import { bothFamilies } from "../families.js"
import * as DeployConfig from "./config.js"
import { ReleaseRunner } from "./runner.js"
import { DeployStore } from "./store.js"

type Made = Effect.Effect.Success<ReturnType<DeployStore["create"]>>

const ops = Effect.gen(function* () {
  const store = yield* DeployStore
  const runner = yield* ReleaseRunner
  const config = yield* DeployConfig.DeployServerConfig
  /** Records the release and starts it unless the idempotency key had already made it. */
  const started = <E>(made: Effect.Effect<Made, E>) =>
    Effect.tap(made, (m) => (m.created ? runner.start(m.started) : Effect.void)).pipe(Effect.map((m) => m.release))
  return {
    registryToken: (_caller: Caller) =>
      Option.match(config.registry, {
        onNone: () =>
          Effect.fail(
            new NotFound({
              reason:
                "this server hands out no registry credential: its operator sets AGENTSYNC_REGISTRY_USERNAME and AGENTSYNC_REGISTRY_PASSWORD"
            })
          ),
        onSome: (r) =>
          Effect.succeed(
            new RegistryCredential({ registry: Option.getOrNull(r.host), username: r.username, password: r.password })
          )
      }),
    lockStatus: store.lockStatus,
    lock: (caller: Caller, payload: { readonly holder: string; readonly message: string }) =>
      store.acquire(caller, payload.holder, payload.message),
    heartbeat: store.heartbeat,
    unlock: store.unlock,
    forceUnlock: store.forceUnlock,
    deploy: (caller: Caller, payload: DeployRequest, key: string | undefined) =>
      started(
        store.create(caller, {
          kind: "deploy",
          lockId: payload.lock_id,
          idempotencyKey: key,
          image: payload.image,
          tag: payload.tag,
          sourceSha: payload.source_sha,
          dirty: payload.dirty,
          message: payload.message,
          health: payload.health
        })
      ),
    rollback: (caller: Caller, number: number, payload: RollbackRequest, key: string | undefined) =>
      started(
        store.create(caller, {
          kind: "rollback",
          lockId: payload.lock_id,
          idempotencyKey: key,
          rollbackOf: number,
          tag: null,
          sourceSha: null,
          dirty: null,
          message: payload.message,
          health: payload.health
        })
      ),
    releases: store.releases,
    release: store.release
  }
})

const idempotencyKey = (headers: { readonly "idempotency-key"?: string | undefined }) => {
  const key = headers["idempotency-key"]
  return key === undefined || key === "" ? undefined : key.slice(0, 200)
}

/** The deploy handlers, once for both URL families. */
const HandlersLive = bothFamilies({ sync: "deploy", cloud: "cloudDeploy" }, (handlers, callerOf) =>
  Effect.map(ops, (o) =>
    handlers
      .handle("registryToken", (r) => Effect.flatMap(callerOf(r), o.registryToken))
      .handle("lockStatus", (r) => Effect.flatMap(callerOf(r), o.lockStatus))
      .handle("lock", (r) => Effect.flatMap(callerOf(r), (c) => o.lock(c, r.payload)))
      .handle("heartbeat", (r) => Effect.flatMap(callerOf(r), (c) => o.heartbeat(c, r.path.lockId)))
      .handle("unlock", (r) => Effect.flatMap(callerOf(r), (c) => o.unlock(c, r.path.lockId)))
      .handle("forceUnlock", (r) => Effect.flatMap(callerOf(r), o.forceUnlock))
      .handle("deploy", (r) => Effect.flatMap(callerOf(r), (c) => o.deploy(c, r.payload, idempotencyKey(r.headers))))
      .handle("releases", (r) => Effect.flatMap(callerOf(r), (c) => o.releases(c, r.urlParams.limit)))
      .handle("release", (r) => Effect.flatMap(callerOf(r), (c) => o.release(c, r.path.number)))
      .handle("rollback", (r) =>
        Effect.flatMap(callerOf(r), (c) => o.rollback(c, r.path.number, r.payload, idempotencyKey(r.headers)))
      )
  )
)

/** Both deploy groups with their store, runner and settings; hooks run as child processes of the server. */
export const DeployLive = HandlersLive.pipe(
  Layer.provide(Layer.mergeAll(DeployStore.Default, ReleaseRunner.Default)),
  Layer.provide(
    Layer.mergeAll(Shell.layer.pipe(Layer.provide(NodeContext.layer)), NodeHttpClient.layerUndici, DeployConfig.layer)
  )
)
