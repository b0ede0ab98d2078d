/** The kept head manifest (`.agentsync/remote-manifest.json`, version 4) as the tests read it: its header and its lines. */
import * as fs from "node:fs"

export interface KeptHead {
  readonly version: number
  readonly url: string
  readonly tenant: string
  readonly revision: string
  readonly checksum: string
  readonly files: number
  /** Each line: path, size, hash and kind (`""`, `"x"` for an executable, `"l"` for a link). */
  readonly lines: ReadonlyArray<readonly [string, number, string, string]>
}

export const readKeptHead = (file: string): KeptHead => {
  const text = fs.readFileSync(file, "utf8")
  const newline = text.indexOf("\n")
  const header = JSON.parse(text.slice(0, newline)) as Omit<KeptHead, "lines">
  const body = text.slice(newline + 1)
  const lines: Array<readonly [string, number, string, string]> = []
  // path NUL size NUL hash, then a newline, or NUL and a kind letter and a newline (a path may hold a newline).
  const line = /([^\0]+)\0(\d+)\0([0-9a-f]{64})(?:\0([xl]))?\n/y
  let at = 0
  for (let m = line.exec(body); m !== null; m = line.exec(body)) {
    lines.push([m[1]!, Number(m[2]), m[3]!, m[4] ?? ""])
    at = line.lastIndex
  }
  if (at !== body.length) throw new Error("the kept head's lines end before its end")
  return { ...header, lines }
}
