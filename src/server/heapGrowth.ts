/** How far the `agentsync serve` process lets its old generation grow between full collections (V8's heap growth). */
import { setFlagsFromString } from "node:v8"

/**
 * The old generation may grow to four times what the last full collection left (V8's own largest factor), where V8
 * picks 1.1–4 from how busy its collector has been, about 2 for this server. A request body arrives as fresh
 * buffers (100 MiB for a first upload of 100 MiB), which V8 counts against that room until a collection frees them;
 * the server makes few objects of its own while it stores, so its young generation is rarely collected, and with
 * the room V8 picks it ran a full collection of its whole heap every 11–17 MB of body: 1–8 a first upload (median
 * about 4) with V8's own factor, 1–2 with this one. V8 applies the flag after choosing its growing mode, so it also
 * replaces V8's memory-reducing modes and the lower factor it picks for a capped heap; the cap itself
 * (`--max-old-space-size`) still holds.
 */
export const HEAP_GROWING_PERCENT = 300

/** Node takes V8 flags with one dash or two, and V8 reads `-` and `_` in a name alike. */
const SET_BY_OPERATOR = /^--?heap[-_]growing[-_]percent(=|$)/

/**
 * The flag to set, or undefined where the operator chose the growth already, on Node's command line (`execArgv`;
 * Node refuses the flag in `NODE_OPTIONS`): that choice stands.
 */
export const heapGrowthFlag = (execArgv: ReadonlyArray<string>): string | undefined =>
  execArgv.some((arg) => SET_BY_OPERATOR.test(arg)) ? undefined : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`

/**
 * Sets the growth for this process, unless the operator did; answers the flag set. Only the server's command calls
 * it: a V8 flag holds for the whole process, which a program embedding the library owns. That a flag set once the
 * process runs takes effect rests on V8's code (it reads the flag each time a full collection sets the next limit)
 * and on measurement with Node 20.20 and 22.23, not on a documented contract (Node's docs warn that changing flags
 * at run time may do nothing); test/server/heapGrowth.test.ts reads V8's own report of the factor, so an upgrade
 * that changes this fails there.
 */
export const growHeapForBodies = (
  set: (flag: string) => void = setFlagsFromString,
  execArgv: ReadonlyArray<string> = process.execArgv
): string | undefined => {
  const flag = heapGrowthFlag(execArgv)
  if (flag !== undefined) set(flag)
  return flag
}
