/** Every escape sequence the panel writes: the alternate screen, the cursor, line positioning and the line styles. */
import type { Line, Style } from "../../domain/skills/panelView.js"

const CSI = "\u001b["

/** Enters the alternate screen with the cursor hidden; `leave` undoes both (and any style left on). */
export const enter = `${CSI}?1049h${CSI}?25l${CSI}H`
export const leave = `${CSI}0m${CSI}?25h${CSI}?1049l`

const SGR: Record<Style, string> = {
  plain: "",
  title: "1",
  heading: "2",
  group: "1;36",
  selected: "7",
  changed: "33",
  conflict: "31",
  status: "36",
  error: "1;31",
  keys: "2",
  added: "32",
  removed: "31",
  hunk: "36"
}

/** Where reverse video is the only mark the selection has besides its `>`: kept with NO_COLOR (it is not a colour). */
const styled = (style: Style, color: boolean): string => {
  const code = color ? SGR[style] : style === "selected" ? SGR.selected : ""
  return code === "" ? "" : `${CSI}${code}m`
}

/**
 * The bytes that turn the screen from `previous` into `next`: only the lines that changed, each overwritten in
 * place (cursor to its row, the text, the style reset) — no clear, so nothing flickers. `previous` undefined
 * (start, resize) writes every line.
 */
export const frame = (previous: ReadonlyArray<Line> | undefined, next: ReadonlyArray<Line>, color: boolean): string => {
  let out = ""
  next.forEach((l, i) => {
    const old = previous?.[i]
    if (old !== undefined && old.text === l.text && old.style === l.style) return
    const style = styled(l.style, color)
    out += `${CSI}${i + 1};1H${style}${l.text}${style === "" ? "" : `${CSI}0m`}`
  })
  return out
}
