/** What stands in a pull's way in the services tree on the local disk, found with synchronous calls (a walk only where a folder must become a file). */

import * as fs from "node:fs"
import * as nodePath from "node:path"
import { errnoCode } from "../errors.js"
import { type Entry, entriesByBytes, escapeName, mayHoldUnreadable } from "./nameBytes.js"
import { type SpecialKind, specialKind, specialName } from "./state.js"

/**
 * What on disk stands in the way of a pull's writes that the plan does not remove: a file (or a link) where a
 * folder must go, a folder holding files the pull does not delete where a file must go. One line per obstacle.
 */
export const findObstacles = (
  root: string,
  write: ReadonlyArray<string>,
  deleted: ReadonlySet<string>
): ReadonlyArray<string> => {
  const out: Array<string> = []
  const kind = new Map<string, "dir" | "file" | "link" | "none" | SpecialKind>()
  const kindOf = (rel: string) => {
    let k = kind.get(rel)
    if (k === undefined) {
      let st: fs.Stats | undefined
      try {
        st = fs.lstatSync(nodePath.join(root, rel), { throwIfNoEntry: false })
      } catch (e) {
        // Under a file (which the pull deletes first): nothing there.
        if (errnoCode(e) !== "ENOTDIR") throw e
      }
      k =
        st === undefined
          ? "none"
          : st.isSymbolicLink()
            ? "link"
            : st.isDirectory()
              ? "dir"
              : (specialKind(st) ?? "file")
      kind.set(rel, k)
    }
    return k
  }
  /** Every entry under a folder, as paths relative to the tree. */
  const contents = (rel: string): Array<string> => {
    const found: Array<string> = []
    const walk = (dir: string, prefix: string) => {
      let entries: Array<Entry> = fs.readdirSync(dir, { withFileTypes: true })
      // A name that is not UTF-8 is one the pull does not delete: named by its bytes, and not entered.
      if (mayHoldUnreadable(entries)) entries = entriesByBytes(dir, (raw) => found.push(`${prefix}/${escapeName(raw)}`))
      for (const d of entries) {
        const r = `${prefix}/${d.name}`
        if (d.isDirectory()) walk(nodePath.join(dir, d.name), r)
        else found.push(r)
      }
    }
    walk(nodePath.join(root, rel), rel)
    return found
  }
  for (const p of write) {
    const segments = p.split("/")
    // Under a folder that is not there, nothing is: the path itself needs no call of its own.
    let absent = false
    for (let i = 1; i < segments.length; i++) {
      const ancestor = segments.slice(0, i).join("/")
      const k = kindOf(ancestor)
      if (k === "dir") continue
      absent = k === "none"
      // A link the pull deletes first is moved aside, never written through.
      if (k === "link" && !deleted.has(ancestor))
        out.push(`${ancestor} is a symbolic link here; a pull never writes through one (${p})`)
      else if (k === "file" && !deleted.has(ancestor))
        out.push(`${ancestor} is a file here, but the pull would make it a folder (${p})`)
      else if (k !== "none" && k !== "link" && k !== "file")
        out.push(`${ancestor} is ${specialName(k)} here, but the pull would make it a folder (${p})`)
      break
    }
    // A special file the listing named is not carried, and the remote's file there is left out of the plan; one the
    // pull would still write over (it became one since) is refused, never replaced.
    const here = absent ? "none" : kindOf(p)
    if (here !== "none" && here !== "dir" && here !== "link" && here !== "file")
      out.push(`${p} is ${specialName(here)} here; a pull never replaces one`)
    if (here === "dir") {
      const kept = contents(p).filter((f) => !deleted.has(f))
      if (kept.length > 0)
        out.push(
          `${p} is a folder here holding ${kept[0]}${kept.length > 1 ? ` and ${kept.length - 1} more` : ""}, but the pull would make it a file`
        )
    }
  }
  return out
}
