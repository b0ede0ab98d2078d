import { describe, expect, it } from "@effect/vitest"
import { FastCheck, Option } from "effect"
import { frame } from "../../../src/cli/skillUi/ansi.js"
import { keyOf } from "../../../src/cli/skillUi/run.js"
import {
  type Command,
  type Event,
  init,
  type PanelRow,
  type PanelState,
  press,
  update
} from "../../../src/domain/skills/panel.js"
import { view } from "../../../src/domain/skills/panelView.js"

const row = (source: string, unit: string, tool: string, state = "in sync", reason = "in sync"): PanelRow => ({
  source,
  unit,
  tool,
  state,
  direction:
    state === "conflict"
      ? "Conflict"
      : state === "home changed"
        ? "ToRepo"
        : state === "repo changed"
          ? "ToHome"
          : "NoOp",
  reason
})

const ROWS: ReadonlyArray<PanelRow> = [
  row("team", "skills/pdf", "claude"),
  row("team", "skills/pdf", "codex"),
  row("team", "agents/reviewer", "claude", "home changed", "home changed"),
  row("team", "agents/reviewer", "codex"),
  row("team", "commands/ship", "claude", "conflict", "both changed; choose with --prefer home|repo"),
  row("team", "commands/ship", "codex"),
  row("tools", "skills/lint", "claude"),
  row("tools", "skills/lint", "codex")
]

const SIZE = { columns: 80, rows: 24 }

/** A panel with the rows loaded and fetched, nothing running. */
const loaded = (rows: ReadonlyArray<PanelRow> = ROWS, size = SIZE): PanelState => {
  const [s0, c0] = init(size)
  expect(c0).toEqual({ _tag: "Load", fetch: false })
  const [s1, c1] = update(s0, { _tag: "Loaded", rows, problems: [], fetched: false })
  expect(c1).toEqual({ _tag: "Load", fetch: true })
  const [s2, c2] = update(s1, { _tag: "Loaded", rows, problems: [], fetched: true })
  expect(c2._tag).toBe("None")
  return s2
}

const text = (s: PanelState, size = SIZE) => view(s, size).map((l) => l.text.trimEnd())
const selected = (s: PanelState) => text(s).find((l) => l.startsWith("> "))

describe("the skill panel's view", () => {
  it("80×24: title with counts, column heads, rows grouped by source and sorted, status and key lines", () => {
    const lines = view(loaded(), SIZE)
    expect(lines).toHaveLength(24)
    for (const l of lines) expect(Array.from(l.text)).toHaveLength(80)
    expect(lines.slice(0, 13).map((l) => l.text.trimEnd())).toEqual([
      "agentsync skill ui · 8 units · 6 in sync · 1 conflict · 1 home changed",
      "  UNIT            TOOL    STATE         ACTION       REASON",
      "team",
      "> agents/reviewer claude  home changed  home → repo  home changed",
      "  agents/reviewer codex   in sync       -            in sync",
      "  commands/ship   claude  conflict      conflict     both changed; choose with …",
      "  commands/ship   codex   in sync       -            in sync",
      "  skills/pdf      claude  in sync       -            in sync",
      "  skills/pdf      codex   in sync       -            in sync",
      "tools",
      "  skills/lint     claude  in sync       -            in sync",
      "  skills/lint     codex   in sync       -            in sync",
      ""
    ])
    expect(lines[23]!.text).toMatch(
      /^↑↓ move {2}s sync {2}d diff {2}h\/r prefer home\/repo {2}u fetch {2}\/ filter {2}\? keys {2}q quit$/
    )
    expect(lines.map((l) => l.style).slice(2, 6)).toEqual(["group", "selected", "plain", "conflict"])
  })

  it("before the first read it says so, with a spinner on the status line", () => {
    const [s] = init(SIZE)
    const lines = text(s)
    expect(lines[2]).toBe("reading units…")
    expect(lines[22]).toMatch(/^⠋ reading units…$/)
    const [t] = update(s, { _tag: "Tick" })
    expect(text(t)[22]).toMatch(/^⠙ reading units…$/)
  })

  it("a long reason is cut at the screen's width with an ellipsis; a narrow screen still fits every line", () => {
    const long = row("team", "skills/a-rather-long-unit-name-indeed", "claude", "repo changed", "x".repeat(200))
    for (const size of [SIZE, { columns: 40, rows: 10 }, { columns: 200, rows: 60 }]) {
      const lines = view(loaded([long], size), size)
      expect(lines).toHaveLength(size.rows)
      for (const l of lines) expect(Array.from(l.text)).toHaveLength(size.columns)
      if (size.columns >= 80) expect(lines[3]!.text.endsWith("x…")).toBe(true)
    }
  })

  it("never draws a control character: a tab becomes spaces, an escape a ?", () => {
    const s = loaded([row("team", "skills/pdf", "claude", "repo changed", "a\tb\u001b[31m")])
    expect(text(s)[3]).toMatch(/a {4}b\?\[31m$/)
  })
})

describe("the skill panel's keys", () => {
  it("↑/↓, j/k, PgUp/PgDn, Home/End move the cursor within the rows", () => {
    const s = loaded()
    expect(selected(press(s, "down")[0])).toMatch(/^> agents\/reviewer\s+codex/)
    expect(selected(press(s, "j", "j", "k")[0])).toMatch(/^> agents\/reviewer\s+codex/)
    expect(selected(press(s, "up")[0])).toMatch(/^> agents\/reviewer\s+claude/)
    expect(selected(press(s, "end")[0])).toMatch(/^> skills\/lint\s+codex/)
    expect(selected(press(s, "end", "home")[0])).toMatch(/^> agents\/reviewer\s+claude/)
    expect(selected(press(s, "pagedown")[0])).toMatch(/^> skills\/lint\s+codex/)
    expect(selected(press(s, "end", "pageup")[0])).toMatch(/^> agents\/reviewer\s+claude/)
  })

  it("scrolls to keep the cursor in view on a short screen, its source heading with it", () => {
    const size = { columns: 80, rows: 8 }
    const s = loaded(ROWS, size)
    const [end] = press(s, "end")
    const lines = text(end, size)
    expect(lines.slice(2, 6)).toEqual([
      "  skills/pdf      codex   in sync       -            in sync",
      "tools",
      "  skills/lint     claude  in sync       -            in sync",
      "> skills/lint     codex   in sync       -            in sync"
    ])
    const [back] = press(end, "home")
    expect(text(back, size)[2]).toBe("team")
  })

  it("s syncs the focused unit on its tool; one action at a time; the answer reloads the rows", () => {
    const [s, commands] = press(loaded(), "s")
    expect(commands).toEqual([{ _tag: "Sync", row: ROWS[2], prefer: undefined }])
    expect(text(s)[22]).toMatch(/syncing team:agents\/reviewer \[claude\]…/)
    const [again, none] = press(s, "j", "s")
    expect(none).toEqual([])
    expect(text(again)[22]).toBe("⠋ syncing team:agents/reviewer [claude]… · one action at a time")
    const [done, reload] = update(again, {
      _tag: "Done",
      message: "synced team:agents/reviewer [claude]",
      error: false
    })
    expect(reload).toEqual({ _tag: "Load", fetch: false })
    const after = ROWS.map((r) => (r.unit === "agents/reviewer" ? row(r.source, r.unit, r.tool) : r))
    const [fresh] = update(done, { _tag: "Loaded", rows: after, problems: [], fetched: false })
    expect(fresh.busy).toBeUndefined()
    expect(text(fresh)[22]).toBe("synced team:agents/reviewer [claude]")
    // The cursor stays on the row it was on (the second one), whatever the reload did.
    expect(selected(fresh)).toMatch(/^> agents\/reviewer\s+codex\s+in sync/)
  })

  it("h and r ask first, only on a conflict; y runs the sync with --prefer, anything else cancels", () => {
    const s = loaded()
    const [notConflict, none] = press(s, "h")
    expect(none).toEqual([])
    expect(text(notConflict)[22]).toMatch(
      /team:agents\/reviewer \[claude\] is not in conflict \(home changed\): s syncs it/
    )
    const [asked, nothing] = press(s, "j", "j", "r")
    expect(nothing).toEqual([])
    expect(text(asked)[22]).toMatch(
      /^prefer repo for team:commands\/ship \[claude\]\? \[y\/N\] \(the home copy is replaced, /
    )
    expect(press(asked, "n")[1]).toEqual([])
    expect(text(press(asked, "n")[0])[22]).toBe("cancelled: nothing was written")
    expect(press(asked, "enter")[1]).toEqual([])
    expect(press(asked, "y")[1]).toEqual([{ _tag: "Sync", row: ROWS[4], prefer: "repo" }])
    expect(press(s, "j", "j", "h", "y")[1]).toEqual([{ _tag: "Sync", row: ROWS[4], prefer: "home" }])
  })

  it("d asks for the diff; the diff scrolls and q goes back to the list", () => {
    const [s, commands] = press(loaded(), "d")
    expect(commands).toEqual([{ _tag: "Diff", row: ROWS[2] }])
    const body = Array.from({ length: 50 }, (_, i) => ` line ${i + 1}`)
    const [shown] = update(s, { _tag: "DiffReady", title: "diff team:agents/reviewer [claude]", lines: body })
    expect(text(shown)[0]).toBe("diff team:agents/reviewer [claude]")
    expect(text(shown)[1]).toBe(" line 1")
    expect(text(shown)[23]).toBe("↑↓ PgUp PgDn scroll · q back · lines 1-22 of 50")
    expect(text(press(shown, "down", "down")[0])[1]).toBe(" line 3")
    expect(text(press(shown, "pagedown")[0])[1]).toBe(" line 22")
    expect(text(press(shown, "end")[0])[1]).toBe(" line 29")
    expect(text(press(shown, "end", "down")[0])[1]).toBe(" line 29")
    expect(text(press(shown, "end", "home")[0])[1]).toBe(" line 1")
    expect(press(shown, "q")[0].mode._tag).toBe("List")
  })

  it("/ filters by name as it is typed; Enter keeps it, Esc clears it", () => {
    const [typed] = press(loaded(), "/", "l", "i", "n", "t")
    expect(text(typed)[0]).toMatch(/^agentsync skill ui · filter "lint": 2 shown · 8 units/)
    expect(text(typed)[22]).toMatch(/^filter: lint▏/)
    expect(text(typed).filter((l) => /^[> ] \S+\s+(claude|codex)/.test(l))).toHaveLength(2)
    const [kept] = press(typed, "enter")
    expect(kept.mode._tag).toBe("List")
    expect(selected(kept)).toMatch(/^> skills\/lint\s+claude/)
    expect(text(press(kept, "escape")[0])[0]).not.toMatch(/filter/)
    expect(press(kept, "escape")[1]).toEqual([])
    expect(text(press(typed, "backspace", "backspace", "backspace", "backspace", "z")[0])[2]).toBe(
      'no unit matches "z"'
    )
  })

  it("u fetches again; ? shows the keys until any key; q, Esc and Ctrl-C quit (Ctrl-C as an interrupt)", () => {
    const s = loaded()
    expect(press(s, "u")[1]).toEqual([{ _tag: "Load", fetch: true }])
    const [help] = press(s, "?")
    expect(text(help).join("\n")).toMatch(/^s +sync the focused unit/m)
    expect(press(help, "x")[0].mode._tag).toBe("List")
    expect(press(s, "q")[1]).toEqual([{ _tag: "Quit", interrupted: false }])
    expect(press(s, "escape")[1]).toEqual([{ _tag: "Quit", interrupted: false }])
    expect(press(s, "ctrl-c")[1]).toEqual([{ _tag: "Quit", interrupted: true }])
    expect(press(s, "/", "ctrl-c")[1]).toEqual([{ _tag: "Quit", interrupted: true }])
  })

  it("a first read that fails says so in the list, not that there are no units; u tries again", () => {
    const [s0] = init(SIZE)
    const [failed] = update(s0, { _tag: "Failed", message: "another sync is in progress" })
    expect(text(failed)[2]).toBe("the units could not be read (the status line says why); u tries again")
    expect(text(failed)[22]).toBe("another sync is in progress")
    const [retry, c] = press(failed, "u")
    expect(c).toEqual([{ _tag: "Load", fetch: true }])
    expect(text(update(retry, { _tag: "Loaded", rows: ROWS, problems: [], fetched: true })[0])[3]).toMatch(
      /^> agents\/reviewer/
    )
  })

  it("a failure shows on the status line and the panel stays", () => {
    const [s] = press(loaded(), "s")
    const [failed, c] = update(s, { _tag: "Failed", message: "another sync is in progress" })
    expect(c._tag).toBe("None")
    expect(failed.busy).toBeUndefined()
    const line = view(failed, SIZE)[22]!
    expect(line.text.trimEnd()).toBe("another sync is in progress")
    expect(line.style).toBe("error")
  })

  it.prop(
    "any sequence of keys and resizes keeps the cursor on a row and every screen line exactly the screen's width",
    [
      FastCheck.array(
        FastCheck.oneof(
          FastCheck.constantFrom(
            "up",
            "down",
            "j",
            "k",
            "pageup",
            "pagedown",
            "home",
            "end",
            "/",
            "l",
            "escape",
            "enter",
            "?",
            "d",
            "x",
            "backspace"
          ),
          FastCheck.record({
            columns: FastCheck.integer({ min: 20, max: 200 }),
            rows: FastCheck.integer({ min: 5, max: 60 })
          })
        ),
        { maxLength: 40 }
      )
    ],
    ([steps]) => {
      let s = loaded()
      for (const step of steps) {
        const e: Event = typeof step === "string" ? { _tag: "Key", key: step } : { _tag: "Resize", ...step }
        const [next, c]: readonly [PanelState, Command] = update(s, e)
        s = next
        if (c._tag === "Diff") s = update(s, { _tag: "DiffReady", title: "diff", lines: ["+a", "-b"] })[0]
      }
      const lines = view(s, s.size)
      expect(lines).toHaveLength(s.size.rows)
      for (const l of lines) expect(Array.from(l.text)).toHaveLength(s.size.columns)
      if (s.mode._tag === "List" && s.filter === "")
        expect(lines.filter((l) => l.text.startsWith("> "))).toHaveLength(1)
    }
  )
})

/** Escape characters made visible (`^[`), for matching. */
const shown = (bytes: string) => bytes.replaceAll("\u001b", "^[")

describe("the terminal side", () => {
  it("frame overwrites only the lines that changed, in place, without clearing the screen", () => {
    const a = view(loaded(), SIZE)
    const b = view(press(loaded(), "down")[0], SIZE)
    const bytes = shown(frame(a, b, true))
    const moves = [...bytes.matchAll(/\^\[\[(\d+);1H/g)].map((m) => Number(m[1]))
    expect(moves).toEqual([4, 5])
    expect(bytes).not.toMatch(/\^\[\[2J/)
    expect(frame(b, b, true)).toBe("")
    expect([...shown(frame(undefined, b, true)).matchAll(/\^\[\[(\d+);1H/g)]).toHaveLength(24)
  })

  it("NO_COLOR: no colour, only reverse video on the focused row (it also has its `>`)", () => {
    const bytes = shown(frame(undefined, view(loaded(), SIZE), false))
    const sgr = [...bytes.matchAll(/\^\[\[([0-9;]*)m/g)].map((m) => m[1])
    expect(new Set(sgr)).toEqual(new Set(["7", "0"]))
    const colored = [...shown(frame(undefined, view(loaded(), SIZE), true)).matchAll(/\^\[\[([0-9;]*)m/g)].map(
      (m) => m[1]
    )
    expect(colored).toContain("31")
  })

  it("keys from the terminal: arrows and pages by name, printable characters as themselves, Ctrl-C apart", () => {
    const k = (name: string, input?: string, ctrl = false) =>
      keyOf({ key: { name, ctrl, meta: false, shift: false }, input: Option.fromNullable(input) })
    expect(k("up", "\u001b[A")).toBe("up")
    expect(k("pagedown", "\u001b[6~")).toBe("pagedown")
    expect(k("return", "\r")).toBe("enter")
    expect(k("escape", "\u001b")).toBe("escape")
    expect(k("s", "s")).toBe("s")
    expect(k("space", " ")).toBe(" ")
    expect(k("", "/")).toBe("/")
    expect(k("c", "\u0003", true)).toBe("ctrl-c")
    expect(k("x", "\u0018", true)).toBeUndefined()
    expect(k("f1", "\u001bOP")).toBeUndefined()
  })
})
