/** The units panel of `skill ui` (pure): its state, the events it reacts to, and `update(state, event) → [state, command]`. */
import { held } from "../held.js"
import type { Prefer, StatusRow } from "./planner.js"

/** One unit on one tool, as `skill status` reports it. */
export type PanelRow = StatusRow

/** What the panel asks the programs to do; the runner carries it out and answers with an event. */
export type Command =
  | { readonly _tag: "None" }
  | { readonly _tag: "Quit"; readonly interrupted: boolean }
  | { readonly _tag: "Load"; readonly fetch: boolean }
  | { readonly _tag: "Sync"; readonly row: PanelRow; readonly prefer: Prefer | undefined }
  | { readonly _tag: "Diff"; readonly row: PanelRow }

/**
 * A key, by name: a printable character is itself (`"s"`, `"/"`); the others are `up`, `down`, `pageup`,
 * `pagedown`, `home`, `end`, `enter`, `escape`, `backspace`, `ctrl-c`.
 */
export type Key = string

export type Event =
  | { readonly _tag: "Key"; readonly key: Key }
  | { readonly _tag: "Resize"; readonly columns: number; readonly rows: number }
  | { readonly _tag: "Tick" }
  | {
      readonly _tag: "Loaded"
      readonly rows: ReadonlyArray<PanelRow>
      /** Sources that could not be used, and other findings, one line each. */
      readonly problems: ReadonlyArray<string>
      readonly fetched: boolean
    }
  | { readonly _tag: "Done"; readonly message: string; readonly error: boolean }
  | { readonly _tag: "DiffReady"; readonly title: string; readonly lines: ReadonlyArray<string> }
  | { readonly _tag: "Failed"; readonly message: string }

export type Mode =
  | { readonly _tag: "List" }
  | { readonly _tag: "Filter" }
  | { readonly _tag: "Confirm"; readonly row: PanelRow; readonly prefer: Prefer }
  | { readonly _tag: "Diff"; readonly title: string; readonly lines: ReadonlyArray<string>; readonly top: number }
  | { readonly _tag: "Help" }

export interface PanelState {
  readonly rows: ReadonlyArray<PanelRow>
  readonly problems: ReadonlyArray<string>
  /** Whether the rows were read yet (before the first load, the list says it is reading). */
  readonly loaded: boolean
  readonly filter: string
  /** Index into the visible rows. */
  readonly cursor: number
  /** The first visible row of the list (scrolling keeps the cursor in view). */
  readonly top: number
  readonly mode: Mode
  /** What is running (one action at a time), shown with a spinner. */
  readonly busy: string | undefined
  readonly spinner: number
  readonly status: { readonly text: string; readonly error: boolean } | undefined
  readonly size: { readonly columns: number; readonly rows: number }
}

export const none: Command = { _tag: "None" }

/** The state at start-up, and its first command: the rows as the last run left them, without fetching. */
export const init = (size: PanelState["size"]): readonly [PanelState, Command] => [
  {
    rows: [],
    problems: [],
    loaded: false,
    filter: "",
    cursor: 0,
    top: 0,
    mode: { _tag: "List" },
    busy: "reading units",
    spinner: 0,
    status: undefined,
    size
  },
  { _tag: "Load", fetch: false }
]

export const rowKey = (r: Pick<PanelRow, "source" | "unit" | "tool">) => `${r.source}:${r.unit} [${r.tool}]`

/** Rows grouped by source (in the order the sources come), then by unit name and tool. */
export const ordered = (rows: ReadonlyArray<PanelRow>): ReadonlyArray<PanelRow> => {
  const sources = new Map<string, number>()
  for (const r of rows) if (!sources.has(r.source)) sources.set(r.source, sources.size)
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
  const rank = (r: PanelRow) => held(sources.get(r.source), "the place of a row's source")
  return [...rows].sort((a, b) => rank(a) - rank(b) || cmp(a.unit, b.unit) || cmp(a.tool, b.tool))
}

/** The rows the filter lets through, in display order (by source, then unit, then tool). */
export const visibleRows = (s: Pick<PanelState, "rows" | "filter">): ReadonlyArray<PanelRow> => {
  const f = s.filter.toLowerCase()
  return f === "" ? s.rows : s.rows.filter((r) => `${r.source}:${r.unit}`.toLowerCase().includes(f))
}

/** Lines above and below the list: the title, the column heads, the status line and the key bar. */
export const CHROME = 4

/** How many list lines fit; a source heading takes a line too, so the list scrolls by lines. */
export const listHeight = (size: PanelState["size"]) => Math.max(1, size.rows - CHROME)

/** Rows with a heading line before the first row of each source: what the list scrolls over. */
export const listLines = (
  rows: ReadonlyArray<PanelRow>
): ReadonlyArray<{ readonly heading: string } | { readonly row: number; readonly item: PanelRow }> => {
  const out: Array<{ heading: string } | { row: number; item: PanelRow }> = []
  let source: string | undefined
  rows.forEach((r, i) => {
    if (r.source !== source) {
      source = r.source
      out.push({ heading: r.source })
    }
    out.push({ row: i, item: r })
  })
  return out
}

/** The scroll offset that keeps the cursor's line (and its source heading, when it fits) in view. */
const scrolled = (s: PanelState): PanelState => {
  const rows = visibleRows(s)
  const cursor = Math.max(0, Math.min(s.cursor, rows.length - 1))
  const lines = listLines(rows)
  const at = lines.findIndex((l) => "row" in l && l.row === cursor)
  const height = listHeight(s.size)
  let top = Math.min(s.top, Math.max(0, lines.length - height))
  if (at >= 0) {
    const before = lines[at - 1]
    const first = before !== undefined && "heading" in before ? at - 1 : at
    if (first < top) top = first
    if (at >= top + height) top = at - height + 1
  }
  return { ...s, cursor, top: Math.max(0, top) }
}

const move = (s: PanelState, cursor: number): PanelState => scrolled({ ...s, cursor })

const focused = (s: PanelState): PanelRow | undefined => visibleRows(s)[s.cursor]

const say = (s: PanelState, text: string, error = false): PanelState => ({ ...s, status: { text, error } })

const start = (s: PanelState, label: string, command: Command): readonly [PanelState, Command] =>
  s.busy !== undefined
    ? [say(s, "one action at a time"), none]
    : [{ ...s, busy: label, spinner: 0, status: undefined }, command]

const HELP_KEYS: ReadonlyArray<readonly [string, string]> = [
  ["↑ ↓  j k", "move"],
  ["PgUp PgDn Home End", "move by a page, to the first or the last row"],
  ["s", "sync the focused unit (skill sync SOURCE:UNIT --tools TOOL)"],
  ["d", "diff repo → home, per file (↑ ↓ PgUp PgDn scroll, q back)"],
  ["h  r", "settle a conflict with the home / repo copy (y/N; backup kept)"],
  ["u", "fetch the sources again and recompute the rows"],
  ["/", "filter by name (Enter keeps it, Esc clears it)"],
  ["?", "this help"],
  ["q  Esc", "quit"]
]

export const helpLines = (): ReadonlyArray<string> => HELP_KEYS.map(([k, what]) => `${k.padEnd(20)} ${what}`)

const listKey = (s: PanelState, key: Key): readonly [PanelState, Command] => {
  const rows = visibleRows(s)
  const page = Math.max(1, listHeight(s.size) - 1)
  const row = focused(s)
  switch (key) {
    case "up":
    case "k":
      return [move(s, s.cursor - 1), none]
    case "down":
    case "j":
      return [move(s, s.cursor + 1), none]
    case "pageup":
      return [move(s, s.cursor - page), none]
    case "pagedown":
      return [move(s, s.cursor + page), none]
    case "home":
      return [move(s, 0), none]
    case "end":
      return [move(s, rows.length - 1), none]
    case "q":
    case "escape":
      if (s.filter !== "" && key === "escape") return [move({ ...s, filter: "", cursor: 0 }, 0), none]
      return [s, { _tag: "Quit", interrupted: false }]
    case "?":
      return [{ ...s, mode: { _tag: "Help" } }, none]
    case "/":
      return [{ ...s, mode: { _tag: "Filter" } }, none]
    case "u":
      return start(s, "fetching the sources", { _tag: "Load", fetch: true })
    case "s":
      if (row === undefined) return [say(s, "no unit to sync"), none]
      return start(s, `syncing ${rowKey(row)}`, { _tag: "Sync", row, prefer: undefined })
    case "d":
      if (row === undefined) return [say(s, "no unit to compare"), none]
      return start(s, `reading ${rowKey(row)}`, { _tag: "Diff", row })
    case "h":
    case "r": {
      if (row === undefined) return [say(s, "no unit"), none]
      if (row.direction !== "Conflict")
        return [say(s, `${rowKey(row)} is not in conflict (${row.state}): s syncs it`), none]
      if (s.busy !== undefined) return [say(s, "one action at a time"), none]
      return [{ ...s, mode: { _tag: "Confirm", row, prefer: key === "h" ? "home" : "repo" }, status: undefined }, none]
    }
    default:
      return [s, none]
  }
}

const filterKey = (s: PanelState, key: Key): readonly [PanelState, Command] => {
  if (key === "enter") return [{ ...s, mode: { _tag: "List" } }, none]
  if (key === "escape") return [move({ ...s, mode: { _tag: "List" }, filter: "" }, 0), none]
  if (key === "backspace") return [move({ ...s, filter: s.filter.slice(0, -1) }, 0), none]
  if ([...key].length === 1 && key >= " ") return [move({ ...s, filter: s.filter + key, top: 0 }, 0), none]
  return [s, none]
}

const diffKey = (s: PanelState, mode: Extract<Mode, { _tag: "Diff" }>, key: Key): readonly [PanelState, Command] => {
  const height = Math.max(1, s.size.rows - 2)
  const last = Math.max(0, mode.lines.length - height)
  const at = (top: number) => ({ ...s, mode: { ...mode, top: Math.max(0, Math.min(last, top)) } })
  switch (key) {
    case "up":
    case "k":
      return [at(mode.top - 1), none]
    case "down":
    case "j":
    case "enter":
      return [at(mode.top + 1), none]
    case "pageup":
      return [at(mode.top - height + 1), none]
    case "pagedown":
    case " ":
      return [at(mode.top + height - 1), none]
    case "home":
      return [at(0), none]
    case "end":
      return [at(last), none]
    case "q":
    case "escape":
    case "d":
      return [{ ...s, mode: { _tag: "List" } }, none]
    default:
      return [s, none]
  }
}

const onKey = (s: PanelState, key: Key): readonly [PanelState, Command] => {
  if (key === "ctrl-c") return [s, { _tag: "Quit", interrupted: true }]
  const mode = s.mode
  switch (mode._tag) {
    case "List":
      return listKey(s, key)
    case "Filter":
      return filterKey(s, key)
    case "Help":
      return [{ ...s, mode: { _tag: "List" } }, none]
    case "Diff":
      return diffKey(s, mode, key)
    case "Confirm": {
      const back = { ...s, mode: { _tag: "List" } } as const
      if (key !== "y" && key !== "Y") return [say(back, "cancelled: nothing was written"), none]
      return start(back, `settling ${rowKey(mode.row)} with the ${mode.prefer} copy`, {
        _tag: "Sync",
        row: mode.row,
        prefer: mode.prefer
      })
    }
  }
}

/** The panel's one transition: a key, a resize, a tick of the spinner, or the answer of a command. */
export const update = (s: PanelState, e: Event): readonly [PanelState, Command] => {
  switch (e._tag) {
    case "Key":
      return onKey(s, e.key)
    case "Resize":
      return [scrolled({ ...s, size: { columns: e.columns, rows: e.rows } }), none]
    case "Tick":
      return [s.busy === undefined ? s : { ...s, spinner: s.spinner + 1 }, none]
    case "Loaded": {
      // The cursor stays on the unit it was on, wherever the new rows put it.
      const was = focused(s)
      const next = { ...s, rows: ordered(e.rows), problems: e.problems, loaded: true, busy: undefined }
      const at = was === undefined ? -1 : visibleRows(next).findIndex((r) => rowKey(r) === rowKey(was))
      const moved = move(next, at >= 0 ? at : s.cursor)
      // The first read is the one the last run left; the sources are fetched right after.
      return e.fetched || s.loaded
        ? [moved, none]
        : [
            { ...moved, busy: "fetching the sources" },
            { _tag: "Load", fetch: true }
          ]
    }
    case "Done":
      return [
        { ...say(s, e.message, e.error), busy: "reading units" },
        { _tag: "Load", fetch: false }
      ]
    case "DiffReady":
      return [{ ...s, busy: undefined, mode: { _tag: "Diff", title: e.title, lines: e.lines, top: 0 } }, none]
    case "Failed":
      return [{ ...say(s, e.message, true), busy: undefined }, none]
  }
}

/** Feeds keys one after another (tests and replays). */
export const press = (s: PanelState, ...keys: ReadonlyArray<Key>): readonly [PanelState, ReadonlyArray<Command>] => {
  const commands: Array<Command> = []
  let state = s
  for (const key of keys) {
    const [next, c] = update(state, { _tag: "Key", key })
    state = next
    if (c._tag !== "None") commands.push(c)
  }
  return [state, commands]
}
