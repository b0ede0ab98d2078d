/** `agentsync/config`: the project's settings (SyncConfig, its builder, loading from agentsync.yaml and the environment) and the errors programs fail with. */
export * from "../config.js"
export * from "../errors.js"
