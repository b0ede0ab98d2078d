// The server process's heap growth: set at its start unless the operator chose one on Node's command line; and a
// process that sets it still runs and collects.
import { spawnSync } from "node:child_process"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { growHeapForBodies, HEAP_GROWING_PERCENT, heapGrowthFlag } from "../../src/server/heapGrowth.js"

const FLAG = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`

// Node options that say nothing about the heap's growth (a word that only looks like the flag included).
const otherArg = fc.oneof(
  fc.constantFrom("--max-old-space-size=512", "--enable-source-maps", "--heap-growing", "--heapgrowingpercent=5"),
  fc.string().filter((s) => !/^--heap[-_]growing[-_]percent(=|$)/.test(s) && !/\s/.test(s))
)
const operatorArg = fc
  .tuple(fc.constantFrom("-", "_"), fc.constantFrom("-", "_"), fc.option(fc.nat({ max: 1000 }), { nil: undefined }))
  .map(([a, b, n]) => `--heap${a}growing${b}percent${n === undefined ? "" : `=${n}`}`)

describe("heapGrowthFlag", () => {
  it("is the server's flag wherever the operator set no growth", () => {
    fc.assert(
      fc.property(fc.array(otherArg), (argv) => {
        expect(heapGrowthFlag(argv)).toBe(FLAG)
      })
    )
  })

  it("is nothing where the operator set one on the command line, anywhere among the rest", () => {
    fc.assert(
      fc.property(fc.array(otherArg), operatorArg, fc.nat(), (argv, op, at) => {
        const cut = at % (argv.length + 1)
        expect(heapGrowthFlag([...argv.slice(0, cut), op, ...argv.slice(cut)])).toBeUndefined()
      })
    )
  })
})

describe("growHeapForBodies", () => {
  it("sets the flag once, and answers it", () => {
    const set: Array<string> = []
    expect(growHeapForBodies((f) => set.push(f), ["--enable-source-maps"])).toBe(FLAG)
    expect(set).toEqual([FLAG])
  })

  it("leaves an operator's choice alone", () => {
    const set: Array<string> = []
    expect(growHeapForBodies((f) => set.push(f), ["--heap-growing-percent=50"])).toBeUndefined()
    expect(growHeapForBodies((f) => set.push(f), ["--expose-gc", "--heap_growing_percent=50"])).toBeUndefined()
    expect(set).toEqual([])
  })

  // V8 answers a flag it does not know with "unrecognized flag" on stderr, and goes on.
  it("is a flag this Node knows, taken once running: the process still allocates and collects", () => {
    const script = `
      const { setFlagsFromString } = require("node:v8")
      setFlagsFromString(${JSON.stringify(FLAG)})
      let kept = []
      for (let i = 0; i < 2000; i++) { kept.push(Buffer.alloc(65536, i)); if (kept.length > 100) kept = [] }
      globalThis.gc()
      process.stdout.write(kept.length > 0 ? "collected" : "")`
    const run = spawnSync(process.execPath, ["--expose-gc", "-e", script], { encoding: "utf8" })
    expect(run.stderr).toBe("")
    expect(run.status).toBe(0)
    expect(run.stdout).toBe("collected")
  })
})
