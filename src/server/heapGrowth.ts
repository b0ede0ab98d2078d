/** How far the server process lets its old generation grow between full collections (V8's heap growing factor). */
import { setFlagsFromString } from "node:v8"

/**
 * The old generation may grow to four times what the last full collection left (V8's own largest factor), where V8
 * picks 1.1–4 from how busy its collector has been, about 2 for this server. A request body arrives as fresh
 * buffers (100 MiB for a first upload of 100 MiB), which V8 counts against that room until a collection frees them;
 * the server makes few objects of its own while it stores, so its young generation is rarely collected, and with
 * the room V8 picks it ran a full collection of its whole heap every 11–17 MB of body: 6–9 a first upload, most of
 * its garbage collection's CPU. With this room, 1–2.
 */
export const HEAP_GROWING_PERCENT = 300

const SET_BY_OPERATOR = /^--heap[-_]growing[-_]percent(=|$)/

/**
 * The flag to set, or undefined where the operator chose the growth already, on Node's command line (`execArgv`;
 * Node refuses the flag in `NODE_OPTIONS`): that choice stands.
 */
export const heapGrowthFlag = (execArgv: ReadonlyArray<string>): string | undefined =>
  execArgv.some((arg) => SET_BY_OPERATOR.test(arg)) ? undefined : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`

/**
 * Sets the growth for this process, unless the operator did; answers the flag set. V8 reads it whenever a full
 * collection sets the next limit, so setting it once the process runs takes effect from the next one.
 */
export const growHeapForBodies = (
  set: (flag: string) => void = setFlagsFromString,
  execArgv: ReadonlyArray<string> = process.execArgv
): string | undefined => {
  const flag = heapGrowthFlag(execArgv)
  if (flag !== undefined) set(flag)
  return flag
}
