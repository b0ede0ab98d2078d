/** The library's `DbExport` namespace (`agentsync/db`): the table models, the streamed export and its checks, the import planner and its counts. */
export * from "./exportLines.js"
export * from "./importPlan.js"
export * from "./tables.js"
