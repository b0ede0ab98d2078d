/** Small text helpers of the pure layer. */

/**
 * The groups of `re` matched against `text`, or `undefined` when it does not match. For patterns whose groups all
 * take part in every match (none under `?`, `*` or an alternative): a group left unfilled is a fault of the pattern.
 */
export function groups(re: RegExp, text: string, count: 1): readonly [string] | undefined
export function groups(re: RegExp, text: string, count: 2): readonly [string, string] | undefined
export function groups(re: RegExp, text: string, count: number): ReadonlyArray<string> | undefined {
  const m = re.exec(text)
  if (m === null) return undefined
  const found = m.slice(1, count + 1)
  if (found.length !== count || found.some((g) => g === undefined))
    throw new Error(`${re} matched without filling its ${count} groups`)
  return found
}

/** `text` up to the first `separator`, or all of it: `"a/b"` → `"a"` for `"/"`; a first line for `"\n"`. */
export const beforeFirst = (text: string, separator: string): string => {
  const at = text.indexOf(separator)
  return at < 0 ? text : text.slice(0, at)
}
