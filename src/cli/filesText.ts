/** The human text of a file sync report (plain code: the settled run prints it without loading the CLI). */
import { IGNORE_FILE, MEMBERSHIP } from "../domain/membership.js"
import { escapeHidden } from "../domain/text.js"
import type { FilesReport } from "../programs/files.js"
import { escapePath } from "../services/nameBytes.js"
import type { Paint } from "./color.js"
import { table } from "./table.js"

const LIMIT = 200

/** The lines a person reads for a report: the changed paths (the first 200), the counts, what was done. */
export const human = (r: FilesReport) => (p: Paint) => {
  const lines: Array<string> = []
  if (r.files.length > 0) {
    // A change of the executable bit reads `mode +x` / `mode -x` beside the note; a symbolic link says so (a link
    // that is not carried says why in its note).
    const note = (f: FilesReport["files"][number]) =>
      [
        f.mode === undefined ? undefined : `mode ${f.mode}`,
        f.local_link === true || f.remote_link === true
          ? `symbolic link${f.local_link === true && f.remote_link === true ? "" : f.local_link === true ? " (local)" : " (remote)"}`
          : undefined,
        f.note
      ]
        .filter((n) => n !== undefined)
        .join("; ")
    // Links that are not carried come first: however many files change, they are never among the rows cut off.
    const shown = [
      ...r.files.filter((f) => f.status === "NotCarried"),
      ...r.files.filter((f) => f.status !== "NotCarried")
    ]
    // A path as `escapePath` shows it, a note (a link's target) with its control characters escaped: none reaches
    // a terminal raw, and the table's columns hold.
    const rows = shown
      .slice(0, LIMIT)
      .map((f) => [p.status(f.status), f.action ?? "", escapePath(f.path), escapeHidden(note(f))])
    lines.push(table(r.command === "diff" ? ["status", "", "path", ""] : ["status", "action", "path", "note"], rows))
    if (r.files.length > LIMIT) lines.push(`… and ${r.files.length - LIMIT} more (--json lists all)`)
  }
  const dropped = r.files.filter((f) => f.status === "NotCarried")
  const special = dropped.filter((f) => f.special !== undefined).length
  if (dropped.length > special)
    lines.push(
      `${dropped.length - special} symbolic link(s) not carried: absolute, or leaving the services tree (the NotCarried rows above)`
    )
  if (special > 0)
    lines.push(
      `${special} special file(s) not carried: FIFOs, sockets and devices are never opened (the NotCarried rows above)`
    )
  const c = r.counts
  const counts = `${c.added} added, ${c.modified} modified, ${c.removed} removed, ${c.unchanged} unchanged (${r.command === "pull" ? "remote vs local" : "local vs remote"}${r.remote_revision === null ? ", remote empty" : ` ${r.remote_revision}`})`
  lines.push(counts)
  const acts = Object.entries(r.actions)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")
  if (r.command !== "diff") {
    const what = r.dry_run ? "would do" : "did"
    lines.push(`${r.command} ${what}: ${acts === "" ? "nothing, up to date" : acts}`)
  }
  if (r.command === "push" && !r.dry_run && r.revision !== r.remote_revision) {
    lines.push(`pushed ${r.files_sent ?? 0} file(s), ${r.bytes_sent ?? 0} bytes compressed; head is now ${r.revision}`)
  }
  if (r.backup !== undefined)
    lines.push(
      `replaced and deleted files were kept in ${r.backup} (agentsync files restore ${r.backup.split(/[\\/]/).pop()} puts them back)`
    )
  if (r.backups_pruned !== undefined)
    lines.push(`removed ${r.backups_pruned.length} older backup(s): ${r.backups_pruned.join(", ")}`)
  return lines.join("\n")
}

const SHOWN = 8

/**
 * The one line on stderr that names what at the top of the services tree a run did not carry (`left_out`), or
 * undefined when there is none.
 */
export const leftOutLine = (r: Pick<FilesReport, "left_out">): string | undefined => {
  const names = r.left_out ?? []
  if (names.length === 0) return undefined
  // A name not UTF-8 comes shown already (`listTopSync`); any other may still hold a control character.
  const shown = names.slice(0, SHOWN).map((n) => `services/${escapeHidden(n)}`)
  if (names.length > SHOWN) shown.push(`${names.length - SHOWN} more (--json lists all)`)
  const list = shown.length === 1 ? shown[0] : `${shown.slice(0, -1).join(", ")} and ${shown[shown.length - 1]}`
  const [are, them] = names.length === 1 ? ["is", "it"] : ["are", "them"]
  return `note: ${list} ${are} not carried by file sync (only its folders are: ${MEMBERSHIP.join(", ")}); move ${them} under one of those, or add ${them} to ${IGNORE_FILE} to silence this`
}
