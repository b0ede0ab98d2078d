/**
 * Node's platform as the files commands use it — file system, path and terminal — which dist/files.cjs provides
 * in place of `@effect/platform-node/NodeContext` (see scripts/build.mjs): that layer also builds a worker manager
 * and a process executor, whose modules cost a push start-up time (the worker error's schema decoder is made as the
 * module loads, `child_process` and `worker_threads` are loaded) and which no files command uses.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import { Layer } from "effect"

export const layer = Layer.mergeAll(NodePath.layer, NodeTerminal.layer).pipe(Layer.provideMerge(NodeFileSystem.layer))
