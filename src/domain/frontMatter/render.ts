/** Front matter written fresh: YAML for a map of fields, a head for an item never read from a file, and the equality of fields. */
import { stringify } from "yaml"
import { fastRenderYaml } from "../fastYaml.js"
import type { Fields } from "./split.js"

export const YAML_OPTIONS = {
  lineWidth: 0,
  minContentWidth: 0,
  indent: 2,
  aliasDuplicateObjects: false,
  blockQuote: false
} as const

/** YAML for a map of fields: the fast renderer where it applies (byte-identical, see fastYaml.ts), else the library. */
export const renderYaml = (value: Fields): string =>
  fastRenderYaml(value) ?? (Object.keys(value).length === 0 ? "" : stringify(value, YAML_OPTIONS))

/** Front matter written fresh, for an item that was never read from a file: YAML between `---` fences. */
export const freshHead = (fields: Fields): string => `---\n${renderYaml(fields)}---\n\n`

/** Deep equality of JSON values, key order included where `ordered`. */
export const sameJson = (a: unknown, b: unknown, ordered = false): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as ReadonlyArray<unknown>
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i], ordered))
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  if (ordered && ka.some((k, i) => kb[i] !== k)) return false
  // Casts after the checks above: a record guard in their place took about 1.5x this function's CPU time.
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], ordered)
  )
}
