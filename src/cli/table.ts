/** A fixed-width table for terminal output (plain code: the settled run prints without loading the CLI). */
import { stripVTControlCharacters } from "node:util"

/** The width of `s` on a terminal: its colour codes take none. */
const visible = (s: string) => stripVTControlCharacters(s).length

/** A fixed-width table for terminal output (cells may be coloured). */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const all = [header, ...rows.map((r) => r.map(String))]
  const widths = header.map((_, i) => Math.max(...all.map((r) => visible(r[i] ?? ""))))
  return all
    .map((r) =>
      widths
        .map((width, i) => {
          const cell = r[i] ?? ""
          return cell + " ".repeat(width - visible(cell))
        })
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

/** A table of `items`, one row each, or the line `empty` when there are none. */
export const tableOf = <A>(
  items: ReadonlyArray<A>,
  empty: string,
  header: ReadonlyArray<string>,
  row: (item: A) => ReadonlyArray<string | number>
): string => (items.length === 0 ? empty : table(header, items.map(row)))
