/** Releases as pure data: the status machine, the release hook's argv template, and the default rollback target. */
import { Either } from "effect"
import type { Argv } from "./commands.js"

export const RELEASE_STATUSES = ["pending", "hook", "checking", "active", "failed", "superseded"] as const
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number]
export const RELEASE_KINDS = ["deploy", "rollback"] as const
export type ReleaseKind = (typeof RELEASE_KINDS)[number]

/**
 * The moves a release may make: pending → hook → checking → active, a failure from any step before active,
 * and active → superseded when a later release becomes active. failed and superseded are final; history is
 * never edited, so nothing leaves them.
 */
export const TRANSITIONS: { readonly [S in ReleaseStatus]: ReadonlyArray<ReleaseStatus> } = {
  pending: ["hook", "failed"],
  hook: ["checking", "active", "failed"],
  checking: ["active", "failed"],
  active: ["superseded"],
  failed: [],
  superseded: []
}

export const canTransition = (from: ReleaseStatus, to: ReleaseStatus): boolean => TRANSITIONS[from].includes(to)

/** Still running on the server: it holds the tenant's deploy lock until it ends. */
export const RUNNING: ReadonlyArray<ReleaseStatus> = ["pending", "hook", "checking"]
export const isRunning = (status: ReleaseStatus): boolean => RUNNING.includes(status)
/** No further change will come (active can still be superseded, but its outcome is known). */
export const isSettled = (status: ReleaseStatus): boolean => !isRunning(status)

/** The placeholders a hook's argv may hold. */
export const HOOK_PLACEHOLDERS = ["image", "digest", "release", "tenant"] as const
export type HookVars = { readonly [K in (typeof HOOK_PLACEHOLDERS)[number]]: string }
const KNOWN_PLACEHOLDERS: ReadonlySet<string> = new Set(HOOK_PLACEHOLDERS)

/** A hook template as an argv, or why it is unusable (an unknown `{name}`, no program). */
export const hookTemplate = (argv: ReadonlyArray<string>): Either.Either<Argv, string> => {
  const [program, ...args] = argv
  if (program === undefined || program === "") return Either.left("the hook is an argv with at least a program")
  for (const arg of argv) {
    for (const [placeholder] of arg.matchAll(/\{[^{}]*\}/g)) {
      if (!KNOWN_PLACEHOLDERS.has(placeholder.slice(1, -1))) {
        return Either.left(
          `unknown placeholder ${placeholder} in ${JSON.stringify(arg)}; known: ${HOOK_PLACEHOLDERS.map((p) => `{${p}}`).join(", ")}`
        )
      }
    }
  }
  return Either.right([program, ...args])
}

/** The hook's argv for one release: each placeholder replaced inside its argument, never split or shell-parsed. */
export const renderHook = ([program, ...args]: Argv, vars: HookVars): Argv => {
  const render = (arg: string) =>
    arg.replace(/\{(image|digest|release|tenant)\}/g, (_, name: keyof HookVars) => vars[name])
  return [render(program), ...args.map(render)]
}

export interface ReleaseView {
  readonly number: number
  readonly status: ReleaseStatus
  readonly digest: string
}

/**
 * The release `deploy rollback` goes back to by default: the newest release before the active one that was
 * itself active (superseded) and runs a different digest, so a rollback always changes what runs.
 */
export const previousRelease = <R extends ReleaseView>(releases: ReadonlyArray<R>): R | undefined => {
  const active = releases.find((r) => r.status === "active")
  if (active === undefined) return undefined
  return [...releases]
    .filter((r) => r.number < active.number && r.status === "superseded" && r.digest !== active.digest)
    .sort((a, b) => b.number - a.number)[0]
}

/** Why a release cannot be rolled back to, or undefined when it can. */
export const checkRollbackTarget = (target: ReleaseView, active: ReleaseView | undefined): string | undefined => {
  if (target.status === "failed") return `release ${target.number} failed; roll back to a release that was active`
  if (isRunning(target.status)) return `release ${target.number} is still running`
  if (active !== undefined && target.number === active.number) return `release ${target.number} is the active release`
  if (active !== undefined && target.digest === active.digest) {
    return `release ${target.number} runs the same image as the active release ${active.number} (${target.digest})`
  }
  return undefined
}
