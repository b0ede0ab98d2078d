/**
 * Vitest's global set-up: builds dist/ once, before any test file starts, when the run holds a file that runs the
 * built CLI and dist/ is not current; each such file only checks (`ensureBuilt`). A build in each file's own worker
 * removed dist/ under the others.
 */
import { relative } from "node:path"
import type { TestProject } from "vitest/node"
import { buildIfStale } from "../../scripts/built.js"
import { REPO } from "./cli.js"

/** Whether a test file (relative to the root) runs dist/, and whether it needs the declarations too. */
export const needsBuild = (file: string): { readonly build: boolean; readonly types: boolean } => ({
  build: file.startsWith("test/e2e/") || file === "test/cli/usage.test.ts",
  types: file === "test/e2e/package.test.ts"
})

export default (project: TestProject) => {
  const files = project.vitest.state.getPaths().map((p) => relative(project.config.root, p).replaceAll("\\", "/"))
  const needs = files.map(needsBuild)
  if (needs.some((n) => n.build))
    buildIfStale(
      REPO,
      needs.some((n) => n.types)
    )
}
