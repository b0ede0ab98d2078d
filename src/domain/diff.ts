/** The pure diff layer: one generic keyed diff and the per-kind calculators built on it. */
import { accessRuleHash, accessRuleKey, agentHash, contentHash, contentKey, skillHash } from "./hash.js"
import { held } from "./held.js"
import type {
  AccessRule,
  AccessRulesDiffResult,
  Agent,
  AgentsDiffResult,
  Content,
  ContentDiffResult,
  DiffItem,
  DiffResult,
  FileEntry,
  FilesDiffResult,
  Skill,
  SkillsDiffResult
} from "./model.js"
import { fileVersion } from "./model.js"

/** How a kind is keyed and hashed. */
export interface Keyed<A> {
  readonly key: (a: A) => string
  readonly hash: (a: A) => string
}

/**
 * Compares `source` (the side being synced from) with `target`: Added is only in source, Removed only in
 * target, Modified in both with different hashes. Items come back sorted by key. A key present twice on
 * one side keeps its last occurrence; callers that care reject duplicates before diffing.
 */
export const diffKeyed = <S, T = S>(
  keyed: Keyed<NoInfer<S | T>>,
  source: Iterable<S>,
  target: Iterable<T>
): DiffResult<S, T> => {
  // One map of slots holds both sides: a key's source and target meet in the same slot, so each item costs
  // one map operation, and the union of keys is the map's keys. A slot holds a source (and perhaps a target), or
  // a target alone.
  const slots = new Map<string, { s: S; t: T | undefined } | { t: T }>()
  for (const a of source) slots.set(keyed.key(a), { s: a, t: undefined })
  for (const a of target) {
    const k = keyed.key(a)
    const slot = slots.get(k)
    if (slot === undefined) slots.set(k, { t: a })
    else slot.t = a
  }
  // The default sort compares UTF-16 code units, natively: several times faster than a comparator.
  const sorted = [...slots.keys()].sort()
  let added = 0
  let modified = 0
  let removed = 0
  let unchanged = 0
  const items = sorted.map((key): DiffItem<S, T> => {
    const slot = held(slots.get(key), "the slot of a key of the diff")
    if (!("s" in slot)) {
      removed++
      return {
        key,
        status: "Removed",
        source: undefined,
        target: slot.t,
        sourceHash: undefined,
        targetHash: keyed.hash(slot.t)
      }
    }
    const sourceHash = keyed.hash(slot.s)
    if (slot.t === undefined) {
      added++
      return { key, status: "Added", source: slot.s, target: undefined, sourceHash, targetHash: undefined }
    }
    const targetHash = keyed.hash(slot.t)
    if (sourceHash === targetHash) unchanged++
    else modified++
    return {
      key,
      status: sourceHash === targetHash ? "Unchanged" : "Modified",
      source: slot.s,
      target: slot.t,
      sourceHash,
      targetHash
    }
  })
  return { items, counts: { added, modified, removed, unchanged } }
}

/** Applies a diff to its target side, giving the source side back (sorted by key). */
export const applyDiff = <A>(keyed: Keyed<A>, diff: DiffResult<A>, target: Iterable<A>): Array<A> => {
  const out = new Map<string, A>()
  for (const a of target) out.set(keyed.key(a), a)
  for (const item of diff.items) {
    if (item.status === "Removed") out.delete(item.key)
    else if ((item.status === "Added" || item.status === "Modified") && item.source !== undefined)
      out.set(item.key, item.source)
  }
  return [...out.keys()].sort().map((k) => held(out.get(k), "an item of the applied diff"))
}

/** Only the items that need an action. */
export const changes = <A>(diff: DiffResult<A>): ReadonlyArray<DiffItem<A>> =>
  diff.items.filter((i) => i.status !== "Unchanged")

export const hasChanges = (diff: DiffResult<unknown>): boolean =>
  diff.counts.added + diff.counts.modified + diff.counts.removed > 0

export const AgentKeyed: Keyed<Agent> = { key: (a) => a.id, hash: agentHash }
export const SkillKeyed: Keyed<Skill> = { key: (s) => s.id, hash: skillHash }
export const ContentKeyed: Keyed<Content> = { key: contentKey, hash: contentHash }
export const AccessRuleKeyed: Keyed<AccessRule> = { key: accessRuleKey, hash: accessRuleHash }
export const FileKeyed: Keyed<FileEntry> = { key: (f) => f.path, hash: fileVersion }

/** Whether `items` are in strictly increasing order of `key` (no key twice): what a merge of sorted lists relies on. */
export const strictlySortedBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string): boolean => {
  let previous: string | undefined
  for (const item of items) {
    const k = key(item)
    if (previous !== undefined && !(previous < k)) return false
    previous = k
  }
  return true
}

export const AgentsDiffCalculator = {
  diff: (source: Iterable<Agent>, target: Iterable<Agent>): AgentsDiffResult => diffKeyed(AgentKeyed, source, target)
}
export const SkillsDiffCalculator = {
  diff: (source: Iterable<Skill>, target: Iterable<Skill>): SkillsDiffResult => diffKeyed(SkillKeyed, source, target)
}
export const ContentDiffCalculator = {
  diff: (source: Iterable<Content>, target: Iterable<Content>): ContentDiffResult =>
    diffKeyed(ContentKeyed, source, target)
}
export const AccessRulesDiffCalculator = {
  diff: (source: Iterable<AccessRule>, target: Iterable<AccessRule>): AccessRulesDiffResult =>
    diffKeyed(AccessRuleKeyed, source, target)
}
export const FilesDiffCalculator = {
  diff: (source: Iterable<FileEntry>, target: Iterable<FileEntry>): FilesDiffResult =>
    diffKeyed(FileKeyed, source, target)
}
