/** The project migrations, in order, for PgMigrator.fromRecord (table `agentsync_migrations`). */
import projectTables from "./0001_project_tables.js"
import contentFileSha from "./0002_content_file_sha.js"
import contentAsIs from "./0003_content_as_is.js"
import jobRuns from "./0004_job_runs.js"
import itemMode from "./0005_item_mode.js"
import frontMatterAfterBlankLines from "./0006_front_matter_after_blank_lines.js"

export const projectMigrationsRecord = {
  "0001_project_tables": projectTables,
  "0002_content_file_sha": contentFileSha,
  "0003_content_as_is": contentAsIs,
  "0004_job_runs": jobRuns,
  "0005_item_mode": itemMode,
  "0006_front_matter_after_blank_lines": frontMatterAfterBlankLines
}
