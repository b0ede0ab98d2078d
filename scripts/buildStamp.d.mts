/** The types of scripts/buildStamp.mjs (what a build of dist/ was made from). */
export interface BuildStamp {
  readonly types: boolean
  readonly sourcemap: boolean
  readonly inputs: string
}
export declare const STAMP: string
export declare const inputsHash: (repo: string) => string
export declare const stampOf: (
  repo: string,
  options: { readonly types: boolean; readonly sourcemap: boolean }
) => BuildStamp
