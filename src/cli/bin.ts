#!/usr/bin/env node
/**
 * The agentsync executable: runs the bundled CLI (dist/cli.cjs, or dist/files.cjs for a `files push|pull` with
 * work to do) from a code cache, so that a run does not parse
 * and compile the bundle again (about a third of a short command's time). On Node 22.1 and later that is Node's
 * own compile cache (`module.enableCompileCache`). Node 20 has none: there the launcher runs the bundle through
 * `vm.Script` with a V8 code cache, a file per install, build and Node version, refreshed by the first run of
 * each command so that it holds the code every command used. Both live under $XDG_CACHE_HOME/agentsync (default
 * ~/.cache/agentsync); without a cache, or where it cannot be written, the CLI runs the same, only slower to start.
 * Help and completion are answered before any of that by dist/quick.cjs (see src/cli/quickRun.ts), a no-change
 * `files push|pull` by dist/settled.cjs (see src/cli/settledRun.ts).
 */
import { isAscii } from "node:buffer"
import { createHash } from "node:crypto"
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import * as nodeModule from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Script } from "node:vm"
import { agentsyncCacheDir } from "../cacheDir.js"

/**
 * Each bundle's content hash, set by the build (V8 checks only a cache's length and version, not its source), its
 * length in bytes, and whether it is ASCII: the build checks each byte, so that the launcher need not pass over the
 * MB of text again (see `sourceOf`).
 */
declare const AGENTSYNC_BUNDLE_IDS: {
  readonly cli: BundleId
  readonly files: BundleId
}
interface BundleId {
  readonly id: string
  readonly bytes: number
  readonly ascii: boolean
}

const here = dirname(fileURLToPath(import.meta.url))
const require = nodeModule.createRequire(join(here, "cli.cjs"))

const cacheDir = agentsyncCacheDir()
/** Node 22.1+: its compile cache, keyed by each module's path and content. */
const enableCompileCache = (nodeModule as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache

const readOr = <A>(read: () => A, fallback: A): A => {
  try {
    return read()
  } catch {
    return fallback
  }
}

type Bundle = keyof typeof AGENTSYNC_BUNDLE_IDS

/**
 * A bundle's text. The build keeps the bundles ASCII where it can and says which are (`AGENTSYNC_BUNDLE_IDS`), and
 * ASCII decoded as Latin-1 is the same text: a copy, where UTF-8 decoding the 3.4 MB took 45-70 ms of CPU (a
 * non-ASCII byte would make it all two-byte characters), without a pass over the MB to check (3-12 ms for files.cjs on
 * a push, its bytes cold from the read). A bundle of another length than the build's is not the build's, and is
 * checked: Latin-1 if ASCII, else UTF-8 (one edited to the same length is run from the build's code cache anyway,
 * which V8 takes by the source's length).
 */
const sourceOf = (name: Bundle, bytes: Buffer) => {
  const built = AGENTSYNC_BUNDLE_IDS[name]
  const ascii = bytes.length === built.bytes ? built.ascii : isAscii(bytes)
  return bytes.toString(ascii ? "latin1" : "utf8")
}

/**
 * A file's bytes, read into `scratch` when they fit (overwriting what it held: the caller must be done with that),
 * else into a buffer of their own.
 */
const readInto = (path: string, scratch: Buffer): Buffer => {
  const fd = openSync(path, "r")
  try {
    const size = fstatSync(fd).size
    if (size > scratch.length) return readFileSync(fd)
    let at = 0
    for (let n = -1; at < size && n !== 0; at += n) n = readSync(fd, scratch, at, size - at, null)
    // A file that changed size since its size was taken is read whole another way.
    return at === size && readSync(fd, Buffer.alloc(1), 0, 1, null) === 0
      ? scratch.subarray(0, size)
      : readFileSync(path)
  } finally {
    closeSync(fd)
  }
}

/** Node 20: the bundle through `vm.Script` with the launcher's own V8 code cache (one per bundle). */
const fromV8Cache = (name: Bundle) => {
  const bundle = join(here, `${name}.cjs`)
  // A V8 cache holds its script's name: one written by another install (another path, same build) would make
  // this install's stack traces name that one. So the install's path is part of the name.
  const install = createHash("sha256").update(bundle).digest("hex").slice(0, 8)
  const cacheName = `${name}-${AGENTSYNC_BUNDLE_IDS[name].id}-${install}-${process.version}-${process.arch}`
  const cacheFile = join(cacheDir, `${cacheName}.v8`)
  /** The commands whose code the cache holds, beside it. */
  const coveredFile = join(cacheDir, `${cacheName}.json`)
  const covered = readOr<ReadonlyArray<string>>(
    () => JSON.parse(readFileSync(coveredFile, "utf8")) as Array<string>,
    []
  )
  // The command, as its first two plain words (`files push`, `skill source`); paths and options are left out.
  // An option's value that is a plain word only costs one more refresh.
  const command = process.argv
    .slice(2)
    .filter((a) => /^[a-z][a-z-]*$/.test(a))
    .slice(0, 2)
    .join(" ")

  // The bundle's bytes are garbage once decoded, and the code cache is read next into the same memory: the run
  // touches fresh pages for the larger of the two files, not for both (a page first touched costs a fault). This rests
  // on the decode copying: for `latin1` and `utf8` Node makes the string from a copy of the bytes (a large one is an
  // external string over Node's own copy), never over the buffer's memory, so overwriting the buffer leaves the text
  // as it was; a decode that did not copy would hand V8 the cache's bytes as the text. The buffer takes the cache's
  // size only for a cache of a size a cache has (a few times the text's at most): a larger one, damaged or not
  // ours, is read on its own inside `readOr`, where its read fails (past a buffer's limit) or V8 rejects it, and the
  // run writes a new one. Sizing the buffer by it would throw on every run, or read GBs.
  const textBytes = AGENTSYNC_BUNDLE_IDS[name].bytes
  const cacheBytes = readOr(() => statSync(cacheFile).size, 0)
  const scratch = Buffer.allocUnsafeSlow(cacheBytes <= 4 * textBytes ? Math.max(textBytes, cacheBytes) : textBytes)
  const source = sourceOf(name, readInto(bundle, scratch))
  const cached = readOr<Buffer | undefined>(() => readInto(cacheFile, scratch), undefined)
  // No importModuleDynamically: Node 20 drops it for a script made from a cache, so the bundle holds no import().
  // The text as read: the bundle is a function expression already (see scripts/build.mjs), so no concatenation that
  // V8 would copy whole into a flat string.
  const script = new Script(source, {
    filename: bundle,
    ...(cached === undefined ? {} : { cachedData: cached })
  })

  /**
   * Writes the cache with what this run has compiled so far, atomically (runs may race), and records the
   * command as covered: fully when written at exit, as `command~` when written early in a long run.
   */
  const writeCache = (mark: string) => {
    try {
      mkdirSync(cacheDir, { recursive: true })
      const tmp = `${cacheFile}.${process.pid}.tmp`
      writeFileSync(tmp, script.createCachedData())
      renameSync(tmp, cacheFile)
      const now = cached === undefined || script.cachedDataRejected === true ? [mark] : [...covered, mark]
      writeFileSync(`${coveredFile}.${process.pid}.tmp`, JSON.stringify(now))
      renameSync(`${coveredFile}.${process.pid}.tmp`, coveredFile)
      // Caches of other builds and Node versions pile up: keep the few used last (several installs may alternate).
      const others = readdirSync(cacheDir)
        .filter((f) => f.startsWith(`${name}-`) && f.endsWith(".v8") && f !== `${cacheName}.v8`)
        .map((f) => ({ name: f, used: statSync(join(cacheDir, f)).mtimeMs }))
        .sort((a, b) => b.used - a.used)
      for (const old of others.slice(3)) {
        rmSync(join(cacheDir, old.name), { force: true })
        rmSync(join(cacheDir, old.name.replace(/\.v8$/, ".json")), { force: true })
      }
    } catch {
      // A cache that cannot be written (read-only home) only costs start-up time.
    }
  }

  const fresh = cached === undefined || script.cachedDataRejected === true
  if (fresh || !covered.includes(command)) {
    // At exit, so the cache holds every function this command compiled; but a long run (serve, a big sync)
    // writes it once it is long instead, before V8 starts dropping the bytecode of functions that have not run
    // for a while (the bundle's top level first among them), and only once: its next short run completes it.
    // Long is judged by the process's CPU time, which load does not stretch: by wall time a short command on a
    // busy machine counted as long on every run, and its cache was never completed. A run idle for very long (a
    // server waiting) counts as long too. AGENTSYNC_CACHE_EARLY_MS moves that point (CPU ms; wall x IDLE).
    const LONG_MS = Number(process.env.AGENTSYNC_CACHE_EARLY_MS) || 2000
    const IDLE = 10
    const started = performance.now()
    const cpuMs = () => {
      const used = process.cpuUsage()
      return (used.user + used.system) / 1000
    }
    /** How long until the run is long at the soonest (CPU time grows no faster than wall time on one thread). */
    const untilLong = () => Math.min(LONG_MS - cpuMs(), LONG_MS * IDLE - (performance.now() - started))
    let written = false
    const once = (mark: string) => {
      if (written) return
      written = true
      writeCache(mark)
    }
    process.once("exit", () => {
      if (untilLong() > 0) once(command)
    })
    if (fresh || !covered.includes(`${command}~`)) {
      const later = (): unknown =>
        setTimeout(() => (untilLong() <= 0 ? once(`${command}~`) : later()), Math.max(untilLong(), 50)).unref()
      later()
    }
  }

  const module = { exports: {} }
  // The bundle's value: its function of CommonJS's five names (the build makes it so; nothing else is run here).
  const body = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string
  ) => void
  body(module.exports, require, module, bundle, dirname(bundle))
}

const start = (name: Bundle) => {
  if (enableCompileCache === undefined) fromV8Cache(name)
  else {
    try {
      // Nothing is said when the cache cannot be written (read-only home): only start-up time is lost.
      enableCompileCache(join(cacheDir, "compile-cache"))
    } catch {}
    require(join(here, `${name}.cjs`))
  }
}

// Help pages, `__complete …` (every Tab) and `completion bash|zsh|fish` are answered by a small bundle
// (dist/quick.cjs, no Effect, no CLI) from the command tree the build read from the CLI; `files push|pull` with
// nothing changed on either side by another (dist/settled.cjs) from the settled mark. Each is a fraction of the
// CLI's start-up; when one cannot answer (a usage error, names only the CLI reads), the CLI runs. A
// `files push|pull` the settled check leaves to the program runs from dist/files.cjs, the same program from a
// bundle of the files commands alone (a usage error never gets there: the check reads only plain command lines).
const args = process.argv.slice(2)
const settling = args.includes("files") && (args.includes("push") || args.includes("pull"))
const helpish =
  args.length === 0 ||
  args[0] === "__complete" ||
  args.some((a) => a === "--help" || a === "-h" || a === "completion" || a.startsWith("--completions")) ||
  // a group without its command shows its help
  (!settling && args.every((a) => /^[a-z][a-z-]*$/.test(a)))
const quick = () => (require(join(here, "quick.cjs")) as { run: (args: ReadonlyArray<string>) => boolean }).run(args)
if (helpish && quick()) {
  // answered
} else if (settling) {
  const settled = require(join(here, "settled.cjs")) as {
    run: (args: ReadonlyArray<string>) => Promise<boolean>
    parseSettledArgs: (args: ReadonlyArray<string>) => unknown
  }
  void settled.run(args).then((done) => {
    if (!done) start(settled.parseSettledArgs(args) === undefined ? "cli" : "files")
  })
} else start("cli")
