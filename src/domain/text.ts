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

// A character that would change how the line around it reads: a control (a newline, ESC, U+0085), a format character
// such as U+202E that reverses the text after it, a line or paragraph separator.
const HIDDEN_CLASS = "[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}]"
const HIDDEN = new RegExp(HIDDEN_CLASS, "gu")
const HIDDEN_ONE = new RegExp(`^${HIDDEN_CLASS}$`, "u")
const utf8 = new TextEncoder()

/** Whether one character (a code point) is hidden: shown by its bytes wherever names are shown. */
export const isHidden = (char: string): boolean => HIDDEN_ONE.test(char)

/** A byte as names show one they do not show as text: `\xNN`. */
export const byteShown = (b: number): string => `\\x${b.toString(16).padStart(2, "0")}`

/**
 * A line of text made from names (a message, a list of names some of which `escapeName` already shows) with each
 * control, format or separator character shown by its UTF-8 bytes as `\xNN`, the rest as it is: no name in it reaches a
 * terminal raw, and a name shown before is not shown again. For terminal text only: JSON carries names as they are.
 */
export const escapeHidden = (text: string): string =>
  text.replace(HIDDEN, (c) => Array.from(utf8.encode(c), byteShown).join(""))
