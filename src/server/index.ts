/** The tenant server's one entry point for the CLI and the library: the HTTP API and its serving, the file store, tenants and migrations. */
export { FileStore } from "./files/FileStore.js"
export * as TenantServer from "./http.js"
export { type ListenOptions, listen } from "./listen.js"
export * as Migrations from "./migrations.js"
export { adminOps, Tenants } from "./tenants.js"
