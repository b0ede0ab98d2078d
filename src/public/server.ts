/** `agentsync/server`: the tenant server (HTTP API, file store) and the API's schema, for embedding or for clients. */
export * as Api from "../api/index.js"
export { FileStore } from "../server/FileStore.js"
export * as TenantServer from "../server/http.js"
