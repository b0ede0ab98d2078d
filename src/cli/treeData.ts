/** The command tree and the sync kinds as plain data, read from the CLI's definitions: the build embeds them in dist/quick.cjs. */
import { SyncKind } from "../domain/model.js"
import { command } from "./main.js"
import { specOf } from "./spec.js"

export const treeData = () => ({ tree: specOf(command), kinds: SyncKind.literals })
