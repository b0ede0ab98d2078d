import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { describe, expect, it } from "vitest"
import { agentsync } from "../support/cli.js"

const cacheFiles = async (dir: string) => (await fs.readdir(nodePath.join(dir, "agentsync")).catch(() => [] as Array<string>)).filter((f) => f.endsWith(".v8"))

describe("the agentsync executable", () => {
  it("keeps a code cache per build: made by the first run, used as is by the next, replaced when damaged", async () => {
    const cache = await fs.mkdtemp(nodePath.join(os.tmpdir(), "agentsync-cache-"))
    const env = { XDG_CACHE_HOME: cache }
    expect(await cacheFiles(cache)).toEqual([])
    const first = await agentsync(["--version"], { env })
    expect([first.code, first.stdout.trim()]).toEqual([0, "0.1.0"])
    const [file] = await cacheFiles(cache)
    expect(file).toMatch(new RegExp(`^cli-[0-9a-f]{16}-${process.version.replace(/\./g, "\\.")}-${process.arch}\\.v8$`))
    const path = nodePath.join(cache, "agentsync", file!)
    const made = await fs.stat(path)
    // A cache V8 accepts is not written again.
    const second = await agentsync(["validate", "examples/project"], { env })
    expect(second.code).toBe(0)
    expect((await fs.stat(path)).mtimeMs).toBe(made.mtimeMs)
    // A damaged one is rejected by V8: the run is the same, and the cache is made anew.
    await fs.writeFile(path, Buffer.alloc(made.size, 7))
    const third = await agentsync(["--version"], { env })
    expect([third.code, third.stdout.trim()]).toEqual([0, "0.1.0"])
    expect((await fs.readFile(path)).equals(Buffer.alloc(made.size, 7))).toBe(false)
    // Caches of other builds are pruned down to the few used last.
    for (const i of [1, 2, 3, 4, 5]) await fs.writeFile(nodePath.join(cache, "agentsync", `cli-old${i}-v0-x.v8`), "x")
    await fs.rm(path)
    await agentsync(["--version"], { env })
    expect((await cacheFiles(cache)).length).toBe(4)
    // Where no cache can be written (here the cache home is a file), the CLI still runs, and says nothing of it.
    const notADir = nodePath.join(cache, "a-file")
    await fs.writeFile(notADir, "")
    const readOnly = await agentsync(["--version"], { env: { XDG_CACHE_HOME: notADir } })
    expect([readOnly.code, readOnly.stdout.trim(), readOnly.stderr]).toEqual([0, "0.1.0", ""])
  })
})
