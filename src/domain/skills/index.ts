/** The skill manager's pure layer: state schemas, guards, layout mapping and the sync planner. */
export * from "./detect.js"
export * from "./discover.js"
export * from "./guards.js"
export * from "./layout.js"
export * from "./model.js"
export * from "./planner.js"
export { pathMatcher, unitNameMatcher } from "./templates.js"
