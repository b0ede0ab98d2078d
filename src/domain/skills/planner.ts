/** The skill sync planner (pure): per unit and tool, from base, home and repo states, ToHome / ToRepo / NoOp / Conflict. */
import { createHash } from "node:crypto"
import { kindOf, shaOf, type UnitFiles } from "./model.js"

export type Direction = "ToHome" | "ToRepo" | "NoOp" | "Conflict"
export type Prefer = "home" | "repo"

/** One unit on one tool, as `skill status` reports it (and the `skill ui` panel lists it). */
export interface StatusRow {
  readonly source: string
  readonly unit: string
  readonly tool: string
  /** in sync, home changed, repo changed, conflict, behind upstream, and the deletion and adoption cases. */
  readonly state: string
  /** What a sync would do: ToHome, ToRepo, NoOp or Conflict. */
  readonly direction: Direction
  readonly reason: string
}

/** How a unit stands on one tool, as `skill status` shows it. */
export type UnitStatus =
  | "in-sync"
  | "home-changed"
  | "repo-changed"
  | "both-changed"
  | "new-in-home"
  | "new-in-repo"
  | "deleted-in-home"
  | "deleted-in-repo"
  | "differ-without-base"

/** A side's files; `undefined` (or an empty record) means the unit is absent there. */
export type Side = UnitFiles | undefined

export interface ToolState {
  readonly tool: string
  /** What the lock recorded as deployed: the base of the three-way decision; `undefined` when never deployed. */
  readonly base: Side
  readonly home: Side
}

export interface UnitState {
  readonly source: string
  readonly unit: string
  readonly readOnly: boolean
  readonly repo: Side
  readonly tools: ReadonlyArray<ToolState>
}

export interface PlanOptions {
  /** Who wins a conflict: the user's decision, never a clock. */
  readonly prefer?: Prefer | undefined
  /** Propagate a unit deleted on one side (and unchanged on the other). */
  readonly delete?: boolean | undefined
  /** When either is set, only the directions set are carried out; the others are reported and skipped. */
  readonly toHome?: boolean | undefined
  readonly toRepo?: boolean | undefined
}

export interface SkillAction {
  readonly source: string
  readonly unit: string
  readonly tool: string
  readonly direction: Direction
  readonly status: UnitStatus
  readonly reason: string
  /** What the written side becomes (`undefined`: the unit is removed there); for a NoOp, the base to record. */
  readonly content: Side
  /** Where a ToHome takes its bytes: the repo, or the home of another tool whose edit goes to the repo in this run. */
  readonly from: "repo" | { readonly tool: string }
  /** What the lock does for this unit and tool once the action succeeded. */
  readonly lock: "keep" | "set" | "drop"
  /** A conflict settled by --prefer: the side written over is kept in a backup first. */
  readonly backup: boolean
  /** The states the plan saw: executors re-check the target side against them just before writing. */
  readonly base: Side
  readonly home: Side
  readonly repo: Side
}

const norm = (s: Side): Side => {
  if (s === undefined) return undefined
  for (const _ in s) return s
  return undefined
}

/** Equality of two sides (both absent counts as equal). */
export const sameSide = (a: Side, b: Side): boolean => {
  const x = norm(a)
  const y = norm(b)
  if (x === y) return true
  if (x === undefined || y === undefined) return false
  let n = 0
  for (const k in x) {
    if (x[k] !== y[k]) return false
    n++
  }
  let m = 0
  for (const _ in y) m++
  return n === m
}

/** A short, stable fingerprint of a side for messages: SHA-256 over sorted `path\0sha256` lines, or `absent`. */
const hashes = new WeakMap<object, string>()
export const sideHash = (s: Side): string => {
  const x = norm(s)
  if (x === undefined) return "absent"
  const known = hashes.get(x)
  if (known !== undefined) return known
  const h = createHash("sha256")
  for (const k of Object.keys(x).sort()) h.update(`${k}\0${x[k]}\n`)
  const out = h.digest("hex").slice(0, 12)
  hashes.set(x, out)
  return out
}

/** Two digests of the same bytes that differ only by the executable bit. */
const modeOnly = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a !== b && shaOf(a) === shaOf(b) && kindOf(a) !== "link" && kindOf(b) !== "link"

/** The files that differ between two sides, for reasons; a file whose mode alone changed is marked `(mode)`. */
export const changedFiles = (a: Side, b: Side, fileLabel = "(file)"): ReadonlyArray<string> => {
  const x = norm(a) ?? {}
  const y = norm(b) ?? {}
  const out = new Set<string>()
  const label = (k: string) =>
    `${k === "" ? fileLabel : k}${modeOnly(x[k], y[k]) ? `${k === "" && fileLabel === "" ? "" : " "}(mode)` : ""}`
  for (const k in x) if (x[k] !== y[k]) out.add(label(k))
  for (const k in y) if (!(k in x)) out.add(label(k))
  return [...out].sort()
}

/**
 * Whether writing `target` over `side` loses nothing: each file of the side is as the base had it, or already as
 * the target has it. A run interrupted halfway leaves a side like that (some files new, the rest as before).
 */
const subsumed = (side: UnitFiles, base: UnitFiles, target: UnitFiles | undefined): boolean => {
  const t = target ?? {}
  for (const k in side) if (side[k] !== base[k] && side[k] !== t[k]) return false
  for (const k in base) if (!(k in side) && k in t) return false
  return true
}

const list = (files: ReadonlyArray<string>) =>
  files.length <= 3 ? files.join(", ") : `${files.slice(0, 3).join(", ")} +${files.length - 3}`

type Decision = Pick<SkillAction, "direction" | "status" | "reason" | "content" | "lock"> & {
  readonly from?: SkillAction["from"]
  readonly backup?: boolean
}

const noop = (
  status: UnitStatus,
  reason: string,
  lock: SkillAction["lock"] = "keep",
  content: Side = undefined
): Decision => ({
  direction: "NoOp",
  status,
  reason,
  content,
  lock
})

/** A copy one way: the lock follows the content written, and is dropped with a deletion. */
const toward =
  (direction: "ToHome" | "ToRepo") =>
  (status: UnitStatus, reason: string, content: Side): Decision => ({
    direction,
    status,
    reason,
    content,
    lock: content === undefined ? "drop" : "set"
  })

const toHome = toward("ToHome")
const toRepo = toward("ToRepo")

/** Resolves a conflict the way the user chose with --prefer, within the same safety rules. */
const resolve = (status: UnitStatus, why: string, h: Side, r: Side, readOnly: boolean, o: PlanOptions): Decision => {
  if (o.prefer === "repo") {
    if (r === undefined && !o.delete)
      return noop(status, `${why}; --prefer repo would remove the home copy: add --delete`)
    return { ...toHome(status, `${why}; --prefer repo`, r), backup: h !== undefined }
  }
  if (o.prefer === "home") {
    if (readOnly) return noop(status, `${why}; --prefer home: home kept, the source is read-only`)
    if (h === undefined && !o.delete)
      return noop(status, `${why}; --prefer home would remove the unit from the repo: add --delete`)
    return { ...toRepo(status, `${why}; --prefer home`, h), backup: r !== undefined }
  }
  return {
    direction: "Conflict",
    status,
    reason: `${why}; choose with --prefer home|repo`,
    content: undefined,
    lock: "keep"
  }
}

/** The decision for one tool, from its base, its home and the repo. */
const decide = (b: Side, h: Side, r: Side, readOnly: boolean, o: PlanOptions, unit: string): Decision => {
  // A single-file unit has one unnamed file: its reasons need no file list.
  const single = (x: Side, y: Side) => {
    for (const k in x ?? {}) if (k !== "") return false
    for (const k in y ?? {}) if (k !== "") return false
    return true
  }
  const changed = (x: Side, y: Side) => list(changedFiles(x, y, unit.slice(unit.lastIndexOf("/") + 1)))
  const what = (x: Side, y: Side) =>
    single(x, y) ? (modeOnly(x?.[""], y?.[""]) ? " (mode)" : "") : `: ${changed(x, y)}`
  if (b === undefined) {
    if (h === undefined && r === undefined) return noop("in-sync", "absent on both sides")
    if (h === undefined) return toHome("new-in-repo", "new in the repo", r)
    if (r === undefined) {
      return readOnly
        ? noop("new-in-home", "new in the home; the source is read-only")
        : toRepo("new-in-home", "new in the home", h)
    }
    if (sameSide(h, r)) return noop("in-sync", "first adoption: home and repo are identical", "set", r)
    return resolve(
      "differ-without-base",
      `no recorded base and home and repo differ${single(h, r) ? "" : ` (${changed(h, r)})`}`,
      h,
      r,
      readOnly,
      o
    )
  }
  const homeChanged = !sameSide(h, b)
  const repoChanged = !sameSide(r, b)
  if (!homeChanged && !repoChanged) return noop("in-sync", "in sync")
  if (!homeChanged) {
    if (r === undefined) {
      return o.delete
        ? toHome("deleted-in-repo", "deleted in the repo; --delete", undefined)
        : noop("deleted-in-repo", "deleted in the repo; add --delete to remove it from the home")
    }
    return toHome("repo-changed", `repo changed${what(b, r)}`, r)
  }
  if (!repoChanged) {
    if (readOnly) {
      return noop(
        h === undefined ? "deleted-in-home" : "home-changed",
        "home changed; the source is read-only, the home edit is kept"
      )
    }
    if (h === undefined) {
      return o.delete
        ? toRepo("deleted-in-home", "deleted in the home; --delete", undefined)
        : noop("deleted-in-home", "deleted in the home; add --delete to remove it from the repo")
    }
    return toRepo("home-changed", `home changed${what(b, h)}`, h)
  }
  if (sameSide(h, r)) {
    return h === undefined
      ? noop("both-changed", "deleted on both sides", "drop")
      : noop("both-changed", "both sides changed to the same content", "set", r)
  }
  // One side holds only the other's changes (each file as the base had it or already as the other side has it):
  // finishing the write loses nothing.
  if (h !== undefined && r !== undefined && subsumed(h, b, r))
    return toHome("repo-changed", `repo changed${what(h, r)} (the home already holds part of it)`, r)
  if (h !== undefined && r !== undefined && !readOnly && subsumed(r, b, h))
    return toRepo("home-changed", `home changed${what(r, h)} (the repo already holds part of it)`, h)
  const why =
    h === undefined
      ? "deleted in the home, changed in the repo"
      : r === undefined
        ? "changed in the home, deleted in the repo"
        : single(b, h) && single(b, r)
          ? "both changed"
          : `both changed: home${what(b, h)}; repo${what(b, r)}`
  return resolve("both-changed", why, h, r, readOnly, o)
}

/** Drops the directions the user did not ask for (--to-home / --to-repo), keeping the reason. */
const filter = (d: Decision, o: PlanOptions): Decision => {
  if (!o.toHome && !o.toRepo) return d
  if (d.direction === "ToHome" && !o.toHome) return noop(d.status, `${d.reason} (skipped: --to-repo only)`)
  if (d.direction === "ToRepo" && !o.toRepo) return noop(d.status, `${d.reason} (skipped: --to-home only)`)
  return d
}

/** One tool of a unit while it is planned: its normalised sides and the decision taken for it so far. */
interface Planning {
  readonly tool: string
  readonly base: Side
  readonly home: Side
  decision: Decision
}

/** Plans one unit over all its tools: per-tool decisions, then edits going to the repo are shared with the other tools. */
export const planUnit = (s: UnitState, o: PlanOptions = {}): ReadonlyArray<SkillAction> => {
  const repo = norm(s.repo)
  const rows = s.tools.map((t): Planning => {
    const base = norm(t.base)
    const home = norm(t.home)
    return { tool: t.tool, base, home, decision: filter(decide(base, home, repo, s.readOnly, o, s.unit), o) }
  })
  const pushing = rows.filter((r) => r.decision.direction === "ToRepo")
  const first = pushing[0]
  if (first !== undefined) {
    const content = first.decision.content
    const unchanged = (t: Planning) => sameSide(t.home, t.base) || (t.base === undefined && t.home === undefined)
    // Homes that moved away from their base to something else than the content going to the repo: a home against
    // a home, which no --prefer can settle (it names a side, not a tool).
    const rivals = rows.filter((r) => r.decision.direction !== "ToRepo" && !sameSide(r.home, content) && !unchanged(r))
    const agree = pushing.every((r) => sameSide(r.decision.content, content))
    if (!agree || rivals.length > 0) {
      // In the order of the tools (pushing and rivals are disjoint: a rival is not going to the repo).
      const involved = rows.filter((r) => r.decision.direction === "ToRepo" || rivals.includes(r))
      const names = involved.map((r) => r.tool).join(", ")
      for (const r of involved) {
        r.decision = {
          direction: "Conflict",
          status: r.decision.status,
          reason: `the homes of ${names} changed differently; sync one tool at a time (--tools) or make them equal`,
          content: undefined,
          lock: "keep"
        }
      }
    } else {
      const origin = first.tool
      for (const r of rows) {
        if (r.decision.direction === "ToRepo") continue
        if (sameSide(r.home, content)) {
          r.decision =
            content === undefined
              ? noop("both-changed", `already matches the home of ${origin}`, "drop")
              : noop("both-changed", `already matches the home of ${origin}`, "set", content)
        } else {
          r.decision = filter(
            {
              ...toHome(r.decision.status, `the home of ${origin} changed; propagated`, content),
              from: { tool: origin }
            },
            o
          )
        }
      }
    }
  }
  return rows.map(({ tool, base, home, decision: d }) => ({
    source: s.source,
    unit: s.unit,
    tool,
    direction: d.direction,
    status: d.status,
    reason: d.reason,
    content: d.content,
    from: d.from ?? "repo",
    lock: d.lock,
    backup: d.backup === true,
    base,
    home,
    repo
  }))
}

/** Plans every unit. */
export const planSync = (units: ReadonlyArray<UnitState>, o: PlanOptions = {}): ReadonlyArray<SkillAction> => {
  const out: Array<SkillAction> = []
  for (const u of units) for (const a of planUnit(u, o)) out.push(a)
  return out
}

export interface PlanSummary {
  readonly toHome: number
  readonly toRepo: number
  readonly noOp: number
  readonly conflicts: number
}

export const summarize = (actions: ReadonlyArray<SkillAction>): PlanSummary => {
  let toHome = 0
  let toRepo = 0
  let noOp = 0
  let conflicts = 0
  for (const a of actions) {
    if (a.direction === "ToHome") toHome++
    else if (a.direction === "ToRepo") toRepo++
    else if (a.direction === "Conflict") conflicts++
    else noOp++
  }
  return { toHome, toRepo, noOp, conflicts }
}
