/** The deploy handlers of both URL families, over the DeployStore and the ReleaseRunner. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer, Option } from "effect"
import { type Caller, CurrentCaller, NotFound, sameTenant } from "../../api/common.js"
import { type DeployRequest, RegistryCredential, type RollbackRequest } from "../../api/deploy.js"
import { AgentsyncApi } from "../../api/index.js"
import * as Shell from "../../services/Shell.js"
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

export const SyncDeployLive = HttpApiBuilder.group(AgentsyncApi, "deploy", (handlers) =>
  Effect.map(ops, (o) => {
    const as = <A, E>(f: (caller: Caller) => Effect.Effect<A, E>) => Effect.flatMap(CurrentCaller, f)
    return handlers
      .handle("registryToken", () => as(o.registryToken))
      .handle("lockStatus", () => as(o.lockStatus))
      .handle("lock", ({ payload }) => as((c) => o.lock(c, payload)))
      .handle("heartbeat", ({ path }) => as((c) => o.heartbeat(c, path.lockId)))
      .handle("unlock", ({ path }) => as((c) => o.unlock(c, path.lockId)))
      .handle("forceUnlock", () => as(o.forceUnlock))
      .handle("deploy", ({ headers, payload }) => as((c) => o.deploy(c, payload, idempotencyKey(headers))))
      .handle("releases", ({ urlParams }) => as((c) => o.releases(c, urlParams.limit)))
      .handle("release", ({ path }) => as((c) => o.release(c, path.number)))
      .handle("rollback", ({ headers, path, payload }) =>
        as((c) => o.rollback(c, path.number, payload, idempotencyKey(headers)))
      )
  })
)

export const CloudDeployLive = HttpApiBuilder.group(AgentsyncApi, "cloudDeploy", (handlers) =>
  Effect.map(ops, (o) => {
    const as = <A, E>(tenantId: string, f: (caller: Caller) => Effect.Effect<A, E>) =>
      Effect.flatMap(sameTenant(tenantId), f)
    return handlers
      .handle("registryToken", ({ path }) => as(path.tenantId, o.registryToken))
      .handle("lockStatus", ({ path }) => as(path.tenantId, o.lockStatus))
      .handle("lock", ({ path, payload }) => as(path.tenantId, (c) => o.lock(c, payload)))
      .handle("heartbeat", ({ path }) => as(path.tenantId, (c) => o.heartbeat(c, path.lockId)))
      .handle("unlock", ({ path }) => as(path.tenantId, (c) => o.unlock(c, path.lockId)))
      .handle("forceUnlock", ({ path }) => as(path.tenantId, o.forceUnlock))
      .handle("deploy", ({ headers, path, payload }) =>
        as(path.tenantId, (c) => o.deploy(c, payload, idempotencyKey(headers)))
      )
      .handle("releases", ({ path, urlParams }) => as(path.tenantId, (c) => o.releases(c, urlParams.limit)))
      .handle("release", ({ path }) => as(path.tenantId, (c) => o.release(c, path.number)))
      .handle("rollback", ({ headers, path, payload }) =>
        as(path.tenantId, (c) => o.rollback(c, path.number, payload, idempotencyKey(headers)))
      )
  })
)

/** Both deploy groups with their store, runner and settings; hooks run as child processes of the server. */
export const DeployLive = Layer.mergeAll(SyncDeployLive, CloudDeployLive).pipe(
  Layer.provide(Layer.mergeAll(DeployStore.Default, ReleaseRunner.Default)),
  Layer.provide(
    Layer.mergeAll(Shell.layer.pipe(Layer.provide(NodeContext.layer)), NodeHttpClient.layerUndici, DeployConfig.layer)
  )
)
