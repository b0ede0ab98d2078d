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

// In a `u` pattern a surrogate pair is one code point, so `\p{Cs}` matches only an unpaired half.
const LONE_SURROGATE = /\p{Cs}/u

/** Whether `text` holds a lone surrogate: a string UTF-8 (and so PostgreSQL, or a file's bytes) cannot hold as it is. */
export const hasLoneSurrogate = (text: string): boolean => LONE_SURROGATE.test(text)
