/** The project migrations, in order, for PgMigrator.fromRecord (table `agentsync_migrations`). */
import projectTables from "./0001_project_tables.js"

export const projectMigrationsRecord = {
  "0001_project_tables": projectTables
}
