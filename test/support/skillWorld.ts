/** A user's machine for skill sync tests: an upstream bare repository, a state dir and two tool homes, all in a temp dir. */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { SkillSync } from "../../src/programs/skillSync.js"
import { type Git, layer as gitLayer } from "../../src/services/Git.js"
import { layer as shellLayer } from "../../src/services/Shell.js"
import { SkillStore, layer as storeLayer } from "../../src/services/SkillStore.js"
import { UnitDisk, type UnitDiskShape } from "../../src/services/UnitDisk.js"
import { type FixtureFile, makeUpstream, readTree, SAMPLE } from "./gitFixture.js"

let counter = 0

/** A fresh world under `top`: its own upstream, state dir and tool homes; nothing touches the real home. */
export const makeWorld = (
  top: string,
  files: Record<string, FixtureFile> = SAMPLE,
  options: { readonly head?: string; readonly disk?: UnitDiskShape } = {}
) => {
  const root = nodePath.join(top, `w${counter++}`)
  fs.mkdirSync(root, { recursive: true })
  const up = makeUpstream(root, files, "remote", options.head)
  const env = {
    HOME: nodePath.join(root, "home"),
    AGENTSYNC_TOOL_HOME_CLAUDE: nodePath.join(root, "claude"),
    AGENTSYNC_TOOL_HOME_CODEX: nodePath.join(root, "codex")
  }
  const state = nodePath.join(root, "state")
  const layer = SkillSync.DefaultWithoutDependencies.pipe(
    Layer.provideMerge(Layer.mergeAll(storeLayer({ root: state, env }), gitLayer.pipe(Layer.provide(shellLayer)))),
    Layer.provide(options.disk === undefined ? Layer.empty : Layer.succeed(UnitDisk, options.disk)),
    Layer.provideMerge(NodeContext.layer)
  )
  const claude = (p: string) => nodePath.join(env.AGENTSYNC_TOOL_HOME_CLAUDE, p)
  const codex = (p: string) => nodePath.join(env.AGENTSYNC_TOOL_HOME_CODEX, p)
  const lockText = () =>
    fs.existsSync(nodePath.join(state, "lock.yaml"))
      ? fs.readFileSync(nodePath.join(state, "lock.yaml"), "utf8")
      : undefined
  const snapshot = () => ({
    claude: readTree(env.AGENTSYNC_TOOL_HOME_CLAUDE),
    codex: readTree(env.AGENTSYNC_TOOL_HOME_CODEX),
    lock: lockText(),
    manifest: fs.existsSync(nodePath.join(state, "manifest.yaml"))
      ? fs.readFileSync(nodePath.join(state, "manifest.yaml"), "utf8")
      : undefined,
    remote: up.log()
  })
  const cache = nodePath.join(state, "cache", "team")
  const install = SkillSync.install({ uri: `git:${up.bare}`, name: "team", tools: ["claude", "codex"] })
  return { root, up, env, state, cache, layer, claude, codex, snapshot, lockText, install }
}

export type World = ReturnType<typeof makeWorld>

export const runIn = <A, E>(w: World, effect: Effect.Effect<A, E, SkillSync | SkillStore | Git>) =>
  Effect.provide(effect, w.layer)

/**
 * A second git source, `second`, holding `files`, which the manifest sends to claude as well (written by hand, as a
 * user might): its units land on the same home paths as the first source's where their paths agree.
 */
export const addSecondSource = (w: World, files: Record<string, FixtureFile>) =>
  Effect.gen(function* () {
    const other = makeUpstream(w.root, files, "other")
    yield* SkillSync.addSource({ uri: `git:${other.bare}`, name: "second" })
    const store = yield* SkillStore
    const manifest = yield* store.readManifest()
    yield* store.writeManifest({
      ...manifest,
      units: [...manifest.units, { source: "second", name: "**", tools: ["claude"] }]
    })
    return other
  })

export const read = (p: string) => fs.readFileSync(p, "utf8")

export const write = (p: string, s: string) => {
  fs.mkdirSync(nodePath.dirname(p), { recursive: true })
  fs.writeFileSync(p, s)
}

export const isExec = (p: string) => (fs.statSync(p).mode & 0o100) !== 0
