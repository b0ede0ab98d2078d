/** Test support: temporary folders cleaned up after the file, and a services/ tree read back as files or items. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { afterAll } from "vitest"
import { type Project, parseProject } from "../../src/domain/project.js"

/** A maker of temporary folders, all removed after the test file. */
export const tempDirs = (prefix: string) => {
  const made: Array<string> = []
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true })
  })
  return (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `agentsync-${prefix}-${name}-`))
    made.push(d)
    return d
  }
}

/** Every file under root, as sorted POSIX paths relative to it (none when root does not exist). */
export const walk = (root: string): Array<string> => {
  const out: Array<string> = []
  const go = (dir: string) => {
    if (!existsSync(dir)) return
    for (const name of readdirSync(dir)) {
      const full = join(dir, name)
      if (statSync(full).isDirectory()) go(full)
      else out.push(relative(root, full).split("\\").join("/"))
    }
  }
  go(root)
  return out.sort()
}

/** A services/ tree parsed into its items. */
export const readTree = (root: string): Project =>
  parseProject(walk(root).map((path) => ({ path, bytes: readFileSync(join(root, path)) })))

/** Every file under root and its bytes in `encoding`, by sorted relative path (empty when root does not exist). */
export const treeFiles = (root: string, encoding: BufferEncoding = "utf8"): Record<string, string> =>
  Object.fromEntries(walk(root).map((path) => [path, readFileSync(join(root, path)).toString(encoding)]))

/** The paths under `dir` this process holds descriptors on (a worker thread's are this process's too). */
export const openUnder = (dir: string): Array<string> =>
  readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      return target.startsWith(dir) ? [target] : []
    } catch {
      return [] // closed meanwhile (the listing's own descriptor)
    }
  })
