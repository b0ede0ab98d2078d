/** Image names of a deploy: registry, app, tag and digest rules, the generated tag, and the digest read from a push. */
import { beforeFirst } from "../text.js"

/** A registry as configured: `host[:port][/namespace…]`, no scheme (`registry.example.com/team`, `127.0.0.1:5000`). */
export const REGISTRY =
  /^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:]+\])(?::[0-9]{1,5})?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
/** An app (repository path below the registry): lowercase components as the OCI distribution spec allows. */
export const APP = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
/** A tag as Docker and the OCI spec allow it. */
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
export const DIGEST = /^sha256:[0-9a-f]{64}$/

/** Why a registry, app or tag is unusable, or undefined when it is fine. */
export const checkRegistry = (registry: string): string | undefined =>
  REGISTRY.test(registry)
    ? undefined
    : "a registry is host[:port][/namespace] in lowercase, without a scheme (e.g. registry.example.com/team)"
export const checkApp = (app: string): string | undefined =>
  APP.test(app)
    ? undefined
    : "an app name is lowercase letters, digits and single separators (., _, -), optionally in /-separated parts"
export const checkTag = (tag: string): string | undefined =>
  TAG.test(tag) ? undefined : "a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"

/** The host a `login` is for: the registry up to its first `/`. */
export const registryHost = (registry: string): string => beforeFirst(registry, "/")

/** Whether the registry is on this machine, where Docker itself allows plain HTTP (127.0.0.0/8, localhost, ::1). */
export const isLoopbackRegistry = (registry: string): boolean => {
  const host = registryHost(registry).replace(/:[0-9]+$/, "")
  return host === "localhost" || /^127(?:\.[0-9]{1,3}){3}$/.test(host) || host === "[::1]"
}

export const repositoryOf = (registry: string, app: string) => `${registry}/${app}`
export const taggedImage = (registry: string, app: string, tag: string) => `${repositoryOf(registry, app)}:${tag}`
/** What a release points at: never a mutable tag. */
export const digestImage = (repository: string, digest: string) => `${repository}@${digest}`

/** The generated tag: `deploy-<unix seconds>-<git short sha>`, or without the sha outside a git repository. */
export const deployTag = (unixSeconds: number, shortSha?: string): string =>
  shortSha === undefined || shortSha === ""
    ? `deploy-${Math.floor(unixSeconds)}`
    : `deploy-${Math.floor(unixSeconds)}-${shortSha}`

/** The digest a push reports (`<tag>: digest: sha256:… size: N`), the last one when there are several. */
export const digestFromPush = (output: string): string | undefined => {
  const all = [...output.matchAll(/digest: (sha256:[0-9a-f]{64})/g)]
  return all.at(-1)?.[1]
}

/** A released image reference, `repository@sha256:…`, split; undefined when it is not one. */
export const parseDigestImage = (
  image: string
): { readonly repository: string; readonly digest: string } | undefined => {
  const at = image.lastIndexOf("@")
  if (at <= 0) return undefined
  const repository = image.slice(0, at)
  const digest = image.slice(at + 1)
  const slash = repository.indexOf("/")
  if (!DIGEST.test(digest) || slash <= 0) return undefined
  return REGISTRY.test(repository.slice(0, slash)) && APP.test(repository.slice(slash + 1))
    ? { repository, digest }
    : undefined
}
