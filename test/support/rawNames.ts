/** Test support: trees holding names that are not UTF-8, made and read by their bytes. */
import * as fs from "node:fs"
import { escapeName } from "../../src/services/nameBytes.js"

/** A name as an old archive writes it: Latin-1, so `é` is the one byte 0xe9, which is not UTF-8 on its own. */
export const latin1 = (name: string) => Buffer.from(name, "latin1")

/** A path of bytes: `base` (UTF-8) and then each segment, a string in UTF-8 or bytes as given. */
export const bytePath = (base: string, ...segments: ReadonlyArray<string | Buffer>): Buffer =>
  Buffer.concat([Buffer.from(base), ...segments.flatMap((s) => [Buffer.from("/"), Buffer.from(s)])])

/** Every file and link under `root` read by bytes (names escaped as `escapeName` shows them), with its content. */
export const rawTree = (root: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (dir: Buffer, rel: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true, encoding: "buffer" })) {
      const abs = Buffer.concat([dir, Buffer.from("/"), d.name])
      const r = `${rel}${escapeName(d.name)}`
      if (d.isSymbolicLink()) out[r] = `-> ${escapeName(fs.readlinkSync(abs, { encoding: "buffer" }))}`
      else if (d.isDirectory()) walk(abs, `${r}/`)
      else out[r] = `${fs.readFileSync(abs, "utf8")}${fs.statSync(abs).mode & 0o100 ? " [+x]" : ""}`
    }
  }
  if (fs.existsSync(root)) walk(Buffer.from(root), "")
  return out
}
