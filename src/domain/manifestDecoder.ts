/** Incremental decoding of a manifest's JSON as it arrives: its long array is split into elements, each checked as it comes, within caps. */
import { isRecord } from "./record.js"

/** Why a manifest was refused: over a cap, not valid, or cut short (worth another attempt). */
export class ManifestRefused extends Error {
  constructor(
    readonly kind: "cap" | "invalid" | "truncated",
    reason: string
  ) {
    super(reason)
  }
}

export interface ManifestDecoderOptions<A> {
  /** The top-level key whose array is streamed (`entries`). */
  readonly arrayKey: string
  readonly maxBytes: number
  readonly maxEntries: number
  /** Checks one element; a string is the reason it is refused. */
  readonly element: (u: unknown, index: number) => A | string
}

export interface ManifestDecoder<A> {
  /** Takes the next bytes; throws ManifestRefused past a cap or on malformed JSON. */
  readonly push: (bytes: Uint8Array) => void
  /** The other top-level fields (with the array left empty) and the elements; throws when the text is incomplete. */
  readonly end: () => { readonly fields: Record<string, unknown>; readonly elements: ReadonlyArray<A> }
}

const QUOTE = 34
const BACKSLASH = 92

/**
 * A decoder for `{"…": …, "<arrayKey>": [{…}, …], …}`: the elements of the array are parsed one at a time as
 * their text completes and never held as text together, so memory follows the decoded entries, and a body
 * over `maxBytes` or `maxEntries` is refused as soon as it gets there (an endless body cannot exhaust memory).
 */
export const makeManifestDecoder = <A>(options: ManifestDecoderOptions<A>): ManifestDecoder<A> => {
  const decoder = new TextDecoder("utf-8", { fatal: true })
  const elements: Array<A> = []
  let bytes = 0
  let depth = 0
  let inString = false
  // The text of everything but the array's elements, and of the element being read.
  let rest = ""
  let element = ""
  let inElement = false
  let inArray = false
  let arrayDone = false
  let keyStart = -1
  let lastKey: string | undefined
  let expectKey = false

  const invalid = (why: string) => new ManifestRefused("invalid", `the manifest is not valid JSON: ${why}`)

  // Backslashes that ended the previous chunk inside a string: they may escape this chunk's first quote.
  let carrySlashes = 0

  const scan = (text: string) => {
    let from = 0 // start of the text not yet copied to `rest` or `element`
    for (let i = 0; i < text.length; i++) {
      if (inString) {
        // Jump to the next quote that is not escaped.
        const q = text.indexOf('"', i)
        if (q === -1) {
          let k = text.length - 1
          while (k >= 0 && text.charCodeAt(k) === BACKSLASH) k--
          carrySlashes = k < 0 ? carrySlashes + text.length : text.length - 1 - k
          i = text.length
          break
        }
        let k = q - 1
        while (k >= 0 && text.charCodeAt(k) === BACKSLASH) k--
        const slashes = q - 1 - k + (k < 0 ? carrySlashes : 0)
        carrySlashes = 0
        i = q
        if (slashes % 2 === 0) inString = false
        continue
      }
      const ch = text.charAt(i)
      if (inArray && !inElement) {
        // Between the array's elements: only objects, commas, blanks and the closing bracket.
        if (ch === "{") {
          from = i
          inElement = true
          depth++
        } else if (ch === "]") {
          from = i + 1
          inArray = false
          arrayDone = true
          rest += "]"
        } else if (ch !== "," && ch !== " " && ch !== "\n" && ch !== "\r" && ch !== "\t") {
          throw invalid(`${options.arrayKey} must hold objects`)
        }
        continue
      }
      if (text.charCodeAt(i) === QUOTE) {
        inString = true
        carrySlashes = 0
        if (depth === 1 && expectKey) keyStart = rest.length + (i - from)
        continue
      }
      switch (ch) {
        case "{":
        case "[":
          if (depth === 1 && !inElement && lastKey === options.arrayKey && ch === "[") {
            if (arrayDone) throw invalid(`${options.arrayKey} given twice`)
            inArray = true
            rest += text.slice(from, i + 1)
            from = i + 1
            break
          }
          depth++
          if (depth === 1) expectKey = true
          if (depth > 64) throw invalid("nested too deeply")
          break
        case "}":
        case "]":
          depth--
          if (depth < 0) throw invalid("unbalanced brackets")
          if (depth === 1 && inElement) {
            element += text.slice(from, i + 1)
            from = i + 1
            inElement = false
            let value: unknown
            try {
              value = JSON.parse(element)
            } catch (e) {
              throw invalid(e instanceof Error ? e.message : String(e))
            }
            element = ""
            if (elements.length >= options.maxEntries) {
              throw new ManifestRefused("cap", `the manifest lists more than ${options.maxEntries} files`)
            }
            const checked = options.element(value, elements.length)
            if (typeof checked === "string") throw new ManifestRefused("invalid", checked)
            elements.push(checked)
          }
          break
        case ":":
          if (depth === 1 && !inElement && keyStart >= 0) {
            const all = rest + text.slice(from, i)
            try {
              const key: unknown = JSON.parse(all.slice(keyStart, all.lastIndexOf('"') + 1))
              if (typeof key !== "string") throw new TypeError("not a string")
              lastKey = key
            } catch {
              throw invalid("a key that is not a string")
            }
            keyStart = -1
            expectKey = false
          }
          break
        case ",":
          if (depth === 1 && !inElement) {
            expectKey = true
            lastKey = undefined
          }
          break
      }
    }
    if (inElement) element += text.slice(from)
    else if (!inArray) rest += text.slice(from)
  }

  return {
    push: (chunk) => {
      bytes += chunk.length
      if (bytes > options.maxBytes)
        throw new ManifestRefused("cap", `the manifest is larger than ${options.maxBytes} bytes`)
      let text: string
      try {
        text = decoder.decode(chunk, { stream: true })
      } catch {
        throw invalid("not UTF-8")
      }
      scan(text)
    },
    end: () => {
      let tail: string
      try {
        tail = decoder.decode()
      } catch {
        throw invalid("not UTF-8")
      }
      scan(tail)
      if (depth !== 0 || inString || inArray || inElement || rest.trim() === "") {
        throw new ManifestRefused("truncated", "the manifest ends before its JSON does (cut short)")
      }
      let fields: unknown
      try {
        fields = JSON.parse(rest)
      } catch (e) {
        throw invalid(e instanceof Error ? e.message : String(e))
      }
      if (!isRecord(fields)) throw invalid("not an object")
      return { fields, elements }
    }
  }
}
