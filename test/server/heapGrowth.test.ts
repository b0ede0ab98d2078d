// The server process's heap growth: which command lines leave the operator's own choice alone, and what V8 itself
// reports as its growing factor once the growth is set, left to V8, or chosen by the operator.
import { spawnSync } from "node:child_process"
import { fileURLToPath, pathToFileURL } from "node:url"
import { FastCheck } from "effect"
import { describe, expect, it } from "vitest"
import { HEAP_GROWING_PERCENT, heapGrowthFlag } from "../../src/server/heapGrowth.js"

const FLAG = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`
const REPO = fileURLToPath(new URL("../..", import.meta.url))
const MODULE = pathToFileURL(fileURLToPath(new URL("../../src/server/heapGrowth.ts", import.meta.url))).href

// Node options that say nothing about the heap's growth (words that only look like the flag included).
const otherArg = FastCheck.oneof(
  FastCheck.constantFrom(
    "--max-old-space-size=512",
    "--enable-source-maps",
    "--heap-growing",
    "--heapgrowingpercent=5",
    "---heap-growing-percent=5",
    "heap-growing-percent=5"
  ),
  FastCheck.string().filter((s) => !/^--?heap[-_]growing[-_]percent(=|$)/.test(s) && !/\s/.test(s))
)
// The operator's own choice as Node takes it: one dash or two, `-` or `_` between the words, with or without a value.
const operatorArg = FastCheck.tuple(
  FastCheck.constantFrom("-", "--"),
  FastCheck.constantFrom("-", "_"),
  FastCheck.constantFrom("-", "_"),
  FastCheck.option(FastCheck.nat({ max: 1000 }), { nil: undefined })
).map(([dash, a, b, n]) => `${dash}heap${a}growing${b}percent${n === undefined ? "" : `=${n}`}`)

describe("heapGrowthFlag", () => {
  it("is the server's flag wherever the operator set no growth", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.array(otherArg), (argv) => {
        expect(heapGrowthFlag(argv)).toBe(FLAG)
      })
    )
  })

  it("is nothing where the operator set one on the command line, anywhere among the rest", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.array(otherArg), operatorArg, FastCheck.nat(), (argv, op, at) => {
        const cut = at % (argv.length + 1)
        expect(heapGrowthFlag([...argv.slice(0, cut), op, ...argv.slice(cut)])).toBeUndefined()
      })
    )
  })
})

/**
 * The factor V8 last chose, from its own trace (`[HeapController] Limit: … (4.0)`), in a process started with
 * `nodeArgs` that loads heapGrowth.ts, runs `body` and then a full collection.
 */
const factorAfter = (nodeArgs: ReadonlyArray<string>, body: string) => {
  const script = `import(${JSON.stringify(MODULE)}).then((m) => { ${body}; globalThis.gc() })`
  const run = spawnSync(
    process.execPath,
    [...nodeArgs, "--import", "tsx", "--max-old-space-size=128", "--trace-gc-verbose", "--expose-gc", "-e", script],
    { cwd: REPO, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }
  )
  expect(run.status, run.stderr).toBe(0)
  const limits = [...run.stdout.matchAll(/\[HeapController\] Limit: .*\((\d+\.\d+)\)\s*$/gm)]
  expect(limits.length, run.stdout.slice(-2000)).toBeGreaterThan(0)
  return limits.at(-1)![1]
}

describe("growHeapForBodies, as V8 reports it", () => {
  it("sets the factor the next full collection uses to 4, in a process already running", () => {
    expect(factorAfter([], "m.growHeapForBodies()")).toBe("4.0")
  })

  // The same process without the call: what V8 picks by itself, so the case above is the call's doing.
  it("left out, V8 picks a smaller factor of its own", () => {
    expect(Number(factorAfter([], ""))).toBeLessThan(4)
  })

  it.each(["--heap-growing-percent=50", "-heap-growing-percent=50", "-heap_growing_percent=50"])(
    "leaves the operator's %s alone: V8 keeps 1.5",
    (operator) => {
      expect(factorAfter([operator], "m.growHeapForBodies()")).toBe("1.5")
    }
  )
})
