// Benchmark of the pure diff layer and of tree hashing: `npm run bench:diff`.
// Diff: N content items a side with 1% changed, at 10k, 100k and 1M (linear growth), beside a baseline in the
// same run: a bare Map lookup over the same keys and hashes, the least any keyed diff must do.
// Hashing: a generated tree of 10,000 files hashed by the Workspace's `hashFiles` beside `sha256sum` over the same files.
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { diffKeyed, type Keyed } from "../src/domain/diff.js"
import { sha256 } from "../src/domain/hash.js"
import { make } from "../src/services/Workspace.js"

interface Item {
  readonly key: string
  readonly hash: string
}
const keyed: Keyed<Item> = { key: (i) => i.key, hash: (i) => i.hash }

const corpus = (n: number) => {
  const a: Array<Item> = new Array(n)
  const b: Array<Item> = new Array(n)
  for (let i = 0; i < n; i++) {
    const key = `source-${i % 7}/post-${i.toString(36).padStart(6, "0")}`
    const hash = sha256(key)
    a[i] = { key, hash }
    // 1% changed: a third modified, a third only on one side, a third only on the other.
    const r = i % 100
    b[i] = r === 0 ? { key, hash: sha256(`${key}!`) } : r === 1 ? { key: `${key}-new`, hash } : { key, hash }
  }
  return { a, b: b.filter((_, i) => i % 100 !== 2) }
}

const time = (f: () => void, repeat: number) => {
  f() // warm up
  const samples: Array<number> = []
  for (let i = 0; i < repeat; i++) {
    const t = performance.now()
    f()
    samples.push(performance.now() - t)
  }
  samples.sort((x, y) => x - y)
  return samples[Math.floor(samples.length / 2)]!
}

const baseline = (a: ReadonlyArray<Item>, b: ReadonlyArray<Item>) => {
  const m = new Map<string, string>()
  for (const x of b) m.set(x.key, x.hash)
  let changed = 0
  for (const x of a) if (m.get(x.key) !== x.hash) changed++
  return changed
}

console.log("diff: content items a side, 1% changed (median of runs, ms)")
console.log("items      agentsync   baseline(map)  ratio   ns/item  changes")
for (const n of [10_000, 100_000, 1_000_000]) {
  const { a, b } = corpus(n)
  let counts = { added: 0, modified: 0, removed: 0, unchanged: 0 }
  const ours = time(
    () => {
      counts = diffKeyed(keyed, a, b).counts
    },
    n >= 1_000_000 ? 3 : 9
  )
  const base = time(() => baseline(a, b), n >= 1_000_000 ? 3 : 9)
  const ch = counts.added + counts.modified + counts.removed
  console.log(
    `${String(n).padEnd(10)} ${ours.toFixed(1).padStart(9)}  ${base.toFixed(1).padStart(13)}  ${(ours / base).toFixed(2).padStart(5)}x  ${((ours * 1e6) / n).toFixed(0).padStart(7)}  ${ch}`
  )
}

const FILES = 10_000
const dir = mkdtempSync(join(tmpdir(), "agentsync-bench-hash-"))
try {
  let bytes = 0
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, "content", `s${i % 50}`)
    if (i < 50) mkdirSync(sub, { recursive: true })
    const body = `---\ntitle: Post ${i}\n---\n\n${"lorem ipsum dolor sit amet ".repeat(20 + (i % 200))}\n`
    bytes += body.length
    writeFileSync(join(sub, `post-${i}.md`), body)
  }
  const files = Array.from({ length: FILES }, (_, i) => ({ path: `content/s${i % 50}/post-${i}.md` }))
  const workspace = make(dir)
  // Each run reads and hashes every file (no cache), through the Workspace port as the local manifest does.
  const runOurs = async () => {
    const t = performance.now()
    const entries = await Effect.runPromise(workspace.hashFiles(files))
    return { ms: performance.now() - t, n: entries.length }
  }
  await runOurs()
  const samples: Array<number> = []
  let n = 0
  for (let i = 0; i < 5; i++) {
    const r = await runOurs()
    samples.push(r.ms)
    n = r.n
  }
  samples.sort((x, y) => x - y)
  const oursMs = samples[2]!
  const shaSamples: Array<number> = []
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    execFileSync("sh", ["-c", `find content -type f -print0 | xargs -0 sha256sum > /dev/null`], { cwd: dir })
    shaSamples.push(performance.now() - t)
  }
  shaSamples.sort((x, y) => x - y)
  const shaMs = shaSamples[2]!
  console.log(`\nhashing: ${FILES} files, ${(bytes / 1e6).toFixed(1)} MB (median of 5, ms)`)
  console.log(
    `agentsync hashFiles ${oursMs.toFixed(0)} ms (${n} files)   sha256sum ${shaMs.toFixed(0)} ms   ratio ${(oursMs / shaMs).toFixed(2)}x`
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}
