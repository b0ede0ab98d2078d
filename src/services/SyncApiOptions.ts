/** Where a tenant-API client goes and with what: the endpoint, the token as sent, and the options read from the configuration. */
import { Effect, Layer, Redacted } from "effect"
import { CurrentConfig, type SyncConfig } from "../config.js"
import {
  type CompressSetting,
  compressSettingFromEnv,
  type TransferLimits,
  transferLimitsFromEnv
} from "../domain/caps.js"
import { MissingConfig } from "../errors.js"
import { type Retry, retryFromEnv } from "./Transport.js"

/** Where the tenant lives: its own origin (direct) or a shared API naming the tenant (relay). */
export type SyncEndpoint =
  | { readonly mode: "direct"; readonly origin: string }
  | { readonly mode: "relay"; readonly api: string; readonly tenantId: string }

export interface SyncApiOptions {
  readonly endpoint: SyncEndpoint
  readonly token: Redacted.Redacted<string>
  /** Four numbers or an Effect `Schedule` (default `defaultRetry`, or the environment through `optionsFromConfig`). */
  readonly retry?: Retry
  /** Deadlines and the minimum rate of bodies (default: `TRANSFER`, or the environment through `optionsFromConfig`). */
  readonly limits?: Partial<TransferLimits>
  /** When uploads are compressed (default `auto`, or `AGENTSYNC_COMPRESSION` through `optionsFromConfig`). */
  readonly compress?: CompressSetting
}

const trimSlash = (s: string) => s.replace(/\/+$/, "")

const checkUrl = (key: string, value: string): Effect.Effect<string, MissingConfig> => {
  const ok = /^https?:\/\/[^\s]+$/.test(value)
  return ok
    ? Effect.succeed(trimSlash(value))
    : Effect.fail(
        new MissingConfig({ key, reason: `must be an http(s) URL, got ${JSON.stringify(value.slice(0, 80))}` })
      )
}

/**
 * The token as sent: surrounding whitespace (a newline from `$(cat token)`) trimmed; a character no HTTP
 * header may carry is a configuration error that names the variable, never the token.
 */
export const checkToken = (
  token: Redacted.Redacted<string>
): Effect.Effect<Redacted.Redacted<string>, MissingConfig> => {
  const value = Redacted.value(token).trim()
  if (value === "") return Effect.fail(new MissingConfig({ key: "AGENTSYNC_TOKEN", reason: "is empty" }))
  // Visible ASCII only (RFC 9110 field values; bearer tokens are a subset).
  return /^[\x21-\x7e]+$/.test(value)
    ? Effect.succeed(Redacted.make(value))
    : Effect.fail(
        new MissingConfig({
          key: "AGENTSYNC_TOKEN",
          reason: "holds a space, a line break or another character a token cannot have"
        })
      )
}

/** The endpoint and token from a SyncConfig: direct origin first, else API URL + tenant id. */
export const optionsFromConfig = (config: SyncConfig): Effect.Effect<SyncApiOptions, MissingConfig> =>
  Effect.gen(function* () {
    if (config.token === undefined)
      return yield* new MissingConfig({
        key: "AGENTSYNC_TOKEN",
        reason: "set it to a token from `agentsync tenant create`"
      })
    const token = yield* checkToken(config.token)
    let endpoint: SyncEndpoint
    if (config.directUrl !== undefined) {
      endpoint = { mode: "direct", origin: yield* checkUrl("AGENTSYNC_DIRECT_URL", config.directUrl) }
    } else if (config.apiUrl !== undefined) {
      if (config.tenantId === undefined) {
        return yield* new MissingConfig({
          key: "AGENTSYNC_TENANT_ID",
          reason: "cloud-relay mode (AGENTSYNC_API_URL) needs the tenant id"
        })
      }
      if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(config.tenantId)) {
        return yield* new MissingConfig({
          key: "AGENTSYNC_TENANT_ID",
          reason: "not a tenant id (lowercase letters, digits, '-')"
        })
      }
      endpoint = { mode: "relay", api: yield* checkUrl("AGENTSYNC_API_URL", config.apiUrl), tenantId: config.tenantId }
    } else {
      return yield* new MissingConfig({
        key: "AGENTSYNC_DIRECT_URL",
        reason: "set AGENTSYNC_DIRECT_URL (direct sync), or AGENTSYNC_API_URL and AGENTSYNC_TENANT_ID (cloud relay)"
      })
    }
    // Read here, once, where a client is built: a malformed value fails naming it (exit 2).
    const retry: Retry = config.retry ?? (yield* retryFromEnv)
    const limits = yield* transferLimitsFromEnv
    const compress = yield* compressSettingFromEnv
    return { endpoint, token, retry, limits, compress }
  })

/** A tenant-API client from the configuration in force (AGENTSYNC_DIRECT_URL, or AGENTSYNC_API_URL + AGENTSYNC_TENANT_ID). */
export const fromConfig = <I>(
  layerOf: (options: SyncApiOptions) => Layer.Layer<I>
): Layer.Layer<I, MissingConfig, CurrentConfig> =>
  Layer.unwrapEffect(Effect.map(Effect.flatMap(CurrentConfig, optionsFromConfig), layerOf))
