/** `agentsync/server`: the tenant server (HTTP API, file store) and the API's schema, for embedding or for clients. */
export * as Api from "../api/index.js"
export { FileStore, TenantServer } from "../server/index.js"
