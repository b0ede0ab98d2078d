/** Telling a plain record from other values, without a package (small bundles of the pure layer take none). */

/** An object that is neither null nor an array: its fields can be read by name. */
export const isRecord = (value: unknown): value is { readonly [key: string]: unknown } =>
  typeof value === "object" && value !== null && !Array.isArray(value)
