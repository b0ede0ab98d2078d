/** What the units panel shows (pure): `view(state, size) → lines`, each a text exactly as wide as the screen and a style. */
import { helpLines, listHeight, listLines, type PanelRow, type PanelState, rowKey, visibleRows } from "./panel.js"

/** How a line is drawn; the terminal module turns it into colours (or nothing, with NO_COLOR). */
export type Style =
  | "plain"
  | "title"
  | "heading"
  | "group"
  | "selected"
  | "changed"
  | "conflict"
  | "status"
  | "error"
  | "keys"
  | "added"
  | "removed"
  | "hunk"

export interface Line {
  readonly text: string
  readonly style: Style
}

export interface Size {
  readonly columns: number
  readonly rows: number
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

/** Cuts or pads to exactly `width` columns (one column a code point: the panel's own text has no wide characters). */
export const clip = (text: string, width: number): string => {
  // Control characters (a tab, an escape in a file shown by the diff) would move the cursor: each shows as `?`.
  const cps = Array.from(text.replace(/\t/g, "    "), (c) => (c < " " || c === "\u007f" ? "?" : c))
  if (cps.length > width) return width <= 0 ? "" : `${cps.slice(0, width - 1).join("")}…`
  return cps.join("") + " ".repeat(width - cps.length)
}

const line = (text: string, style: Style, width: number): Line => ({ text: clip(text, width), style })

const actionWord = (r: PanelRow) =>
  r.direction === "ToHome"
    ? "repo → home"
    : r.direction === "ToRepo"
      ? "home → repo"
      : r.direction === "Conflict"
        ? "conflict"
        : "-"

interface Columns {
  readonly unit: number
  readonly tool: number
  readonly state: number
  readonly action: number
}

const columnsFor = (rows: ReadonlyArray<PanelRow>, width: number): Columns => {
  const widest = (of: (r: PanelRow) => string, least: number, most: number) =>
    Math.min(
      most,
      rows.reduce((m, r) => Math.max(m, of(r).length), least)
    )
  const tool = widest((r) => r.tool, 4, 10)
  const action = 11
  // Unit names first, then the state, then the reason gets what is left (at least a few words).
  const unit = Math.max(
    8,
    Math.min(
      widest((r) => r.unit, 4, 32),
      width - 2 - tool - action - 7 - 8 - 12
    )
  )
  const state = Math.max(
    8,
    Math.min(
      widest((r) => r.state, 5, 26),
      width - 2 - unit - tool - action - 7 - 12
    )
  )
  return { unit, tool, state, action }
}

const cells = (c: Columns, unit: string, tool: string, state: string, action: string, reason: string) =>
  `${clip(unit, c.unit)} ${clip(tool, c.tool)}  ${clip(state, c.state)}  ${clip(action, c.action)}  ${reason}`

const counts = (rows: ReadonlyArray<PanelRow>): string => {
  const by = new Map<string, number>()
  for (const r of rows) by.set(r.state, (by.get(r.state) ?? 0) + 1)
  const parts = [...by].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([state, n]) => `${n} ${state}`)
  return `${rows.length} unit${rows.length === 1 ? "" : "s"}${parts.length > 0 ? ` · ${parts.join(" · ")}` : ""}`
}

const KEYS = "↑↓ move  s sync  d diff  h/r prefer home/repo  u fetch  / filter  ? keys  q quit"

const statusLine = (s: PanelState, width: number): Line => {
  const mode = s.mode
  if (mode._tag === "Filter") return line(`filter: ${s.filter}▏ (Enter keeps it, Esc clears it)`, "status", width)
  if (mode._tag === "Confirm") {
    const other = mode.prefer === "home" ? "repo" : "home"
    return line(
      `prefer ${mode.prefer} for ${rowKey(mode.row)}? [y/N] (the ${other} copy is replaced, kept in a backup)`,
      "status",
      width
    )
  }
  if (s.busy !== undefined) {
    const spinning = `${SPINNER[s.spinner % SPINNER.length]} ${s.busy}…`
    return s.status === undefined
      ? line(spinning, "status", width)
      : line(`${spinning} · ${s.status.text}`, s.status.error ? "error" : "status", width)
  }
  if (s.status !== undefined) return line(s.status.text, s.status.error ? "error" : "status", width)
  if (s.problems.length > 0)
    return line(
      `${s.problems.length} problem${s.problems.length === 1 ? "" : "s"}: ${s.problems.join("; ")}`,
      "error",
      width
    )
  return line("", "plain", width)
}

const listView = (s: PanelState, size: Size): ReadonlyArray<Line> => {
  const w = size.columns
  const rows = visibleRows(s)
  const c = columnsFor(rows, w)
  const title = `agentsync skill ui · ${s.filter === "" ? "" : `filter "${s.filter}": ${rows.length} shown · `}${counts(s.rows)}`
  const out: Array<Line> = [
    line(title, "title", w),
    line(`  ${cells(c, "UNIT", "TOOL", "STATE", "ACTION", "REASON")}`, "heading", w)
  ]
  const height = listHeight(size)
  const lines = listLines(rows)
  for (const l of lines.slice(s.top, s.top + height)) {
    if ("heading" in l) {
      out.push(line(l.heading, "group", w))
      continue
    }
    const r = l.item
    const selected = l.row === s.cursor
    const style: Style = selected
      ? "selected"
      : r.direction === "Conflict"
        ? "conflict"
        : r.direction === "NoOp" && r.state === "in sync"
          ? "plain"
          : "changed"
    out.push(line(`${selected ? "> " : "  "}${cells(c, r.unit, r.tool, r.state, actionWord(r), r.reason)}`, style, w))
  }
  if (lines.length === 0)
    out.push(
      line(
        !s.loaded
          ? s.busy === undefined
            ? "the units could not be read (the status line says why); u tries again"
            : "reading units…"
          : s.rows.length === 0
            ? "no units: add a source with `agentsync skill install URI`"
            : `no unit matches "${s.filter}"`,
        "plain",
        w
      )
    )
  while (out.length < size.rows - 2) out.push(line("", "plain", w))
  out.push(statusLine(s, w), line(KEYS, "keys", w))
  return out
}

const diffStyle = (text: string): Style =>
  text.startsWith("+++") || text.startsWith("---")
    ? "heading"
    : text.startsWith("@@")
      ? "hunk"
      : text.startsWith("+")
        ? "added"
        : text.startsWith("-")
          ? "removed"
          : "plain"

/** The screen: the list, a diff, or the keys; always `size.rows` lines of `size.columns` columns. */
export const view = (s: PanelState, size: Size): ReadonlyArray<Line> => {
  const w = Math.max(1, size.columns)
  const mode = s.mode
  let out: Array<Line>
  if (mode._tag === "Diff") {
    const height = Math.max(1, size.rows - 2)
    const shown = mode.lines.slice(mode.top, mode.top + height)
    out = [line(mode.title, "title", w), ...shown.map((t) => line(t, diffStyle(t), w))]
    while (out.length < size.rows - 1) out.push(line("", "plain", w))
    const end = Math.min(mode.lines.length, mode.top + height)
    out.push(line(`↑↓ PgUp PgDn scroll · q back · lines ${mode.top + 1}-${end} of ${mode.lines.length}`, "keys", w))
  } else if (mode._tag === "Help") {
    out = [line("agentsync skill ui · keys", "title", w), line("", "plain", w)]
    for (const h of helpLines()) out.push(line(h, "plain", w))
    out.push(line("", "plain", w), line("any key: back to the list", "keys", w))
  } else out = [...listView(s, { columns: w, rows: size.rows })]
  // A small screen shows what fits: the top of the list, then the status and key lines.
  if (out.length > size.rows) out = size.rows >= 2 ? [...out.slice(0, size.rows - 2), ...out.slice(-2)] : out.slice(-1)
  while (out.length < size.rows) out.push(line("", "plain", w))
  return out
}
