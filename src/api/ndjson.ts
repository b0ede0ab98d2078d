/** The NDJSON framing of the database area's bodies, one codec for the client and the server: a header line, items, an end line with their count. */
import { Effect, Option, Stream } from "effect"
import { EXPORT_VERSION } from "../domain/db/tables.js"

export const NDJSON = "application/x-ndjson"

const encoder = new TextEncoder()

/** A body: the header line, one line per item of each batch (`line` gives its JSON value), the end line with the count. */
export const encodeBody = <A, E, R>(
  batches: Stream.Stream<ReadonlyArray<A>, E, R>,
  line: (item: A) => unknown
): Stream.Stream<Uint8Array, E, R> =>
  Stream.suspend(() => {
    let rows = 0
    const header = JSON.stringify({ kind: "header", version: EXPORT_VERSION, exported_at: new Date().toISOString() })
    return Stream.make(`${header}\n`).pipe(
      Stream.concat(
        Stream.map(batches, (batch) => {
          rows += batch.length
          let text = ""
          for (const item of batch) text += `${JSON.stringify(line(item))}\n`
          return text
        })
      ),
      Stream.concat(Stream.suspend(() => Stream.make(`${JSON.stringify({ kind: "end", rows })}\n`))),
      Stream.map((s) => encoder.encode(s))
    )
  })

/** The lines of a body with their numbers (from 1), without their line breaks. */
export const bodyLines = <E, R>(
  body: Stream.Stream<Uint8Array, E, R>
): Stream.Stream<readonly [number, string], E, R> =>
  Stream.suspend(() => {
    let lineNo = 0
    return body.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.map((text) => [++lineNo, text] as const)
    )
  })

/** What one line of a body is, as an area's decoder reads it. */
export type BodyLine<A> =
  | { readonly kind: "header" }
  | { readonly kind: "end"; readonly rows: unknown }
  | { readonly kind: "item"; readonly item: A }
  | { readonly kind: "bad"; readonly reason: string }

/**
 * The items of a body, checked as they arrive: each line read by `read` (blank lines and the header skipped), the
 * end line's count equal to the items seen, and the end line present (a body cut short is an error, not a short
 * answer). `bad` makes the error from a line number (0: the end is missing) and why.
 */
export const decodeBody = <A, E, R, X>(
  body: Stream.Stream<Uint8Array, E, R>,
  read: (text: string) => BodyLine<A>,
  bad: (line: number, reason: string) => X
): Stream.Stream<A, E | X, R> =>
  Stream.suspend(() => {
    let seen = 0
    let ended = false
    return bodyLines(body).pipe(
      Stream.filterMapEffect(([lineNo, text]): Option.Option<Effect.Effect<A, X>> => {
        if (text === "") return Option.none()
        const line = read(text)
        switch (line.kind) {
          case "header":
            return Option.none()
          case "end":
            ended = true
            return line.rows === seen
              ? Option.none()
              : Option.some(Effect.fail(bad(lineNo, `end line says ${String(line.rows)} rows, got ${seen}`)))
          case "bad":
            return Option.some(Effect.fail(bad(lineNo, line.reason)))
          case "item":
            seen++
            return Option.some(Effect.succeed(line.item))
        }
      }),
      Stream.concat(Stream.suspend(() => (ended ? Stream.empty : Stream.fail(bad(0, "ended early (no end line)")))))
    )
  })
