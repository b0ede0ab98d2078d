/** Errno codes of failed Node calls: plain code without Effect, so that code run before any runtime can use it. */
/** The errno code of a failed Node call (`ENOENT`, …), or undefined for anything else. */
export const errnoCode = (e: unknown): string | undefined => {
  if (typeof e !== "object" || e === null || !("code" in e)) return undefined
  return typeof e.code === "string" ? e.code : undefined
}

/** The first errno code down a cause chain (fetch and sockets nest it), at most five links deep. */
export const causeErrnoCode = (cause: unknown): string | undefined => {
  let c = cause
  for (let depth = 0; depth < 5 && typeof c === "object" && c !== null; depth++) {
    const code = errnoCode(c)
    if (code !== undefined) return code
    c = "cause" in c ? c.cause : undefined
  }
  return undefined
}
