/** The pure side of deploy: image names, the redactor, and the release status machine. */
export * from "./commands.js"
export * from "./image.js"
export * from "./redact.js"
export * from "./release.js"
