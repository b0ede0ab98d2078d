/** The library's `FrontMatter` namespace: front matter split, read, written fresh and edited in place. */
export { patchFrontMatter } from "./patch.js"
export { readFrontMatter, readYamlFields } from "./read.js"
export { freshHead, renderYaml, sameJson } from "./render.js"
export { type Fields, type FrontMatterFormat, problem, type SplitFile, splitFrontMatter } from "./split.js"
