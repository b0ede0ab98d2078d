/** The changes between two maps of fields (what an edit in place writes), and the splice that writes one. */
import type { Json } from "../model.js"
import { isFields } from "./read.js"
import { sameJson } from "./render.js"
import type { Fields } from "./split.js"

/** One change between two maps of fields: the key, the keys of the maps it sits in, and the new value or removal. */
export type Change =
  | { readonly at: ReadonlyArray<string>; readonly key: string; readonly value: Json }
  | { readonly at: ReadonlyArray<string>; readonly key: string; readonly remove: true }

/** The keys from the top down to a change's own. */
export const pathOf = (c: Change): ReadonlyArray<string> => [...c.at, c.key]

/**
 * The changes from `from` to `to`, as deep as both sides are maps; lists change whole. `from` may be any map a
 * parser gave: only `to`'s values are carried.
 */
export const changes = (
  from: { readonly [key: string]: unknown },
  to: Fields,
  at: ReadonlyArray<string> = []
): Array<Change> => {
  const out: Array<Change> = []
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) out.push({ at, key, remove: true })
  for (const [key, value] of Object.entries(to)) {
    if (!Object.hasOwn(from, key)) out.push({ at, key, value })
    else {
      const old = from[key]
      if (sameJson(old, value, true)) continue
      if (
        isFields(old) &&
        isFields(value) &&
        sameJson(
          Object.keys(old).filter((k) => Object.hasOwn(value, k)),
          Object.keys(value).filter((k) => Object.hasOwn(old, k))
        )
      ) {
        out.push(...changes(old, value, [...at, key]))
      } else out.push({ at, key, value })
    }
  }
  return out
}

/** A replacement of `[start, end)` of a text. */
export interface Edit {
  readonly start: number
  readonly end: number
  readonly text: string
}

/** `text` with its edits made (from the end backwards, so earlier offsets stay valid); undefined where two overlap. */
export const applyEdits = (text: string, edits: ReadonlyArray<Edit>): string | undefined => {
  // From the end backwards; of edits at one offset, the later one first, so that each earlier one is spliced in
  // before it and insertions there read in the order given.
  const sorted = edits.map((e, i) => ({ ...e, i })).sort((a, b) => b.start - a.start || b.end - a.end || b.i - a.i)
  let out = text
  let limit = Number.POSITIVE_INFINITY
  for (const e of sorted) {
    if (e.end > limit) return undefined
    out = out.slice(0, e.start) + e.text + out.slice(e.end)
    limit = e.start
  }
  return out
}
