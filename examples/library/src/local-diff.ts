/**
 * What differs between a project's `services/` tree and its database, kind by kind, as `agentsync local diff`
 * shows it. The database is DATABASE_URL, or the project's embedded one (made on first use).
 *
 *   node dist/local-diff.js path/to/project
 */
import { Effect } from "effect"
import { SyncConfig } from "agentsync/config"
import { LocalSync } from "agentsync/local"

const project = process.argv[2] ?? "."
const builder = SyncConfig.builder(`${project}/services`)
const databaseUrl = process.env.DATABASE_URL
const config = (databaseUrl === undefined ? builder : builder.withDatabaseUrl(databaseUrl)).build()

const program = Effect.gen(function* () {
  const report = yield* LocalSync.diff()
  for (const kind of report.kinds) {
    const { added, modified, removed, unchanged } = kind.counts
    yield* Effect.log(`${kind.kind}: +${added} ~${modified} -${removed} =${unchanged}`)
  }
  return report.kinds.reduce((n, kind) => n + kind.counts.added + kind.counts.modified + kind.counts.removed, 0)
})

const changes = await Effect.runPromise(program.pipe(Effect.provide(LocalSync.layer(config))))
console.log(changes === 0 ? "in step" : `${changes} to sync`)
