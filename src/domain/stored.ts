/** Items as a database holds them: with their recorded hash, or as rows that do not decode; what PostgreSQL text cannot hold. */
import { hasLoneSurrogate } from "./text.js"

/** An item as stored, with the canonical hash recorded beside it. */
export interface Stored<A> {
  readonly item: A
  readonly hash: string
}

/** A row that does not decode to a valid item: reported and left alone, never written to disk. */
export interface InvalidRow {
  readonly key: string
  readonly reason: string
}

export interface Listed<A> {
  readonly items: ReadonlyArray<Stored<A>>
  readonly invalid: ReadonlyArray<InvalidRow>
}

/** Why PostgreSQL cannot store a value's text (a NUL character, a lone surrogate), or undefined when it can. */
export const unstorable = (value: unknown): string | undefined => {
  // Every string of the value (object keys too), as JSON.stringify would see them, checked in place: cheaper
  // than serialising a whole item with its body. NUL is reported before a surrogate, as the JSON check did.
  let nul = false
  let surrogate = false
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      if (v.includes("\u0000")) nul = true
      if (hasLoneSurrogate(v)) surrogate = true
    } else if (Array.isArray(v)) {
      for (const x of v) visit(x)
    } else if (v !== null && typeof v === "object") {
      const json = (v as { toJSON?: unknown }).toJSON
      if (typeof json === "function") visit((v as { toJSON: () => unknown }).toJSON())
      else {
        for (const [k, x] of Object.entries(v)) {
          if (x === undefined || typeof x === "function" || typeof x === "symbol") continue
          visit(k)
          visit(x)
        }
      }
    }
  }
  visit(value)
  if (nul) return "contains a NUL character, which PostgreSQL text cannot store"
  if (surrogate) return "contains an unpaired UTF-16 surrogate"
  return undefined
}

/** The definition `unstorable` must agree with: the JSON text the database receives. */
export const unstorableJson = (value: unknown): string | undefined => {
  const json = JSON.stringify(value) ?? ""
  if (json.includes("\\u0000")) return "contains a NUL character, which PostgreSQL text cannot store"
  if (/\p{Cs}/u.test(json) || /\\ud[89a-f][0-9a-f]{2}/i.test(json)) return "contains an unpaired UTF-16 surrogate"
  return undefined
}
