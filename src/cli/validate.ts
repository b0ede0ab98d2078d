/** `agentsync validate [PATH]`: parse a whole project tree and report every problem as file:line. */

import * as nodePath from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect, Option } from "effect"
import { escapeHidden } from "../domain/text.js"
import { InvalidInput } from "../errors.js"
import { escapePath, UNREAD_NAME } from "../services/nameBytes.js"
import { specialName } from "../services/state.js"
import type { Paint } from "./color.js"
import { specialLines, unsyncedLines } from "./local.js"
import { emit } from "./output.js"
import { globals, projectConfig } from "./root.js"

const path = Args.text({ name: "PATH" }).pipe(
  Args.withDescription("a project root (agentsync.yaml + services/) or a bare services/ tree"),
  Args.optional
)

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** What validate says of each name file sync will refuse that it did not read (see `Workspace.readProject`). */
const NOT_UTF8 = `not UTF-8 (local sync and validate do not read it): ${UNREAD_NAME}`

/** Those names: one warning, then each path on its own line. */
const notUtf8Lines = (paths: ReadonlyArray<string>, p: Paint): ReadonlyArray<string> =>
  paths.length === 0
    ? []
    : [
        `${p.bold(p.yellow("warning:"))} ${paths.length === 1 ? "the name below is" : `each of the ${paths.length} names below is`} ${NOT_UTF8}`,
        ...paths.map((path) => `  ${path}`)
      ]

/** What a tree holds, on one line: a content source's name (a folder's, from disk) shown as `escapePath` shows it. */
export const inventoryLine = (
  shown: string,
  inventory: {
    readonly agents: number
    readonly skills: number
    readonly contents: number
    readonly access_rules: number
    readonly attachments: number
    readonly sources: Record<string, { readonly layout: string; readonly items: number }>
  }
): string => {
  const sources = Object.entries(inventory.sources)
    .map(([s, v]) => `${escapePath(s)} (${v.layout}, ${v.items})`)
    .join(", ")
  return `${escapePath(shown)}: ${inventory.agents} agents, ${inventory.skills} skills, ${inventory.contents} content items${sources === "" ? "" : ` in ${sources}`}, ${inventory.access_rules} access rules${inventory.attachments === 0 ? "" : `, ${plural(inventory.attachments, "file")} beside them`}`
}

export const validate = Command.make("validate", { path }, ({ path }) =>
  Effect.gen(function* () {
    const { verbose } = yield* globals
    const config = yield* projectConfig(Option.getOrUndefined(path), { tree: true })
    const { make: makeWorkspace } = yield* Effect.promise(() => import("../services/Workspace.js"))
    const project = yield* makeWorkspace(config.servicesPath).readProject()
    const shown = nodePath.relative(process.cwd(), config.servicesPath) || "."
    const errors = [...project.errors].sort(
      (a, b) => (a.file ?? "").localeCompare(b.file ?? "") || (a.line ?? 0) - (b.line ?? 0)
    )
    const inventory = {
      agents: project.agents.length,
      skills: project.skills.length,
      contents: project.contents.length,
      access_rules: project.accessRules.length,
      attachments: project.attachments.length,
      sources: Object.fromEntries(
        [...project.sources].map(([s, layout]) => [
          s,
          { layout, items: project.contents.filter((c) => c.source === s).length }
        ])
      )
    }
    const problems = errors.map((e) => ({
      file: e.file,
      line: e.line,
      field: e.field,
      message: e.reason
    }))
    // Names file sync refuses that this did not read: a warning, as local sync works on the tree all the same.
    const warnings = [
      ...project.notUtf8.map((file) => ({ file, message: `the name is ${NOT_UTF8}` })),
      ...project.special.map((s) => ({
        file: s.path,
        message: `${specialName(s.kind)}: never opened, carried by neither local sync nor file sync`
      }))
    ]
    const files = new Set(errors.map((e) => e.file ?? ""))
    yield* emit(
      {
        ok: problems.length === 0,
        services: config.servicesPath,
        inventory,
        problems,
        warnings,
        unsynced: project.unsynced
      },
      (p) => {
        // A file's name from disk, shown with its control characters escaped: none forges a line.
        const lines = errors.flatMap((e) => e.lines.map(escapeHidden))
        lines.push(inventoryLine(shown, inventory))
        lines.push(...unsyncedLines(project.unsynced, verbose))
        lines.push(...notUtf8Lines(project.notUtf8, p))
        lines.push(...specialLines(project.special))
        return lines.join("\n")
      },
      problems.length === 0
        ? Effect.void
        : Effect.fail(
            new InvalidInput({
              reason: `${plural(problems.length, "problem")} in ${plural(files.size, "file")} of ${shown}`
            })
          )
    )
  })
).pipe(Command.withDescription("parse the services/ tree and report every problem as file:line"))
