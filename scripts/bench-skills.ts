// Benchmark of skill sync: `npm run bench:skills`.
// A local bare repository with 2,000 units (skills with two files, agents, commands) installed for 3 tools, 1% edited
// at home and 1% upstream. Timed: `status` and a dry-run `sync` (fetch, repo snapshot, home snapshot, plan), and the
// planner alone over the same 6,000 unit × tool states. Baselines in the same run: `git hash-object --stdin-paths`
// and `sha256sum` over the same home files (the least any content check must do), and a naive planner that
// compares sides through sorted JSON. Then a plugin marketplace (`.claude-plugin/marketplace.json`, 80 plugins
// each with skills, agents and commands in its own folder: 640 units, layout detected) through the same steps.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { planSync, type UnitState } from "../src/domain/skills/planner.js"
import { SkillSync, type SyncReport } from "../src/programs/skillSync.js"
import { layer as gitLayer } from "../src/services/Git.js"
import { layer as shellLayer } from "../src/services/Shell.js"
import { layer as storeLayer } from "../src/services/SkillStore.js"

const UNITS = 2000
const TOOLS = ["claude", "codex", "cursor"] as const

const root = fs.realpathSync(fs.mkdtempSync(nodePath.join(os.tmpdir(), "agentsync-bench-skills-")))
const sh = (cwd: string, cmd: string, ...args: Array<string>) =>
  execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 28 })
const gitId = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]

const emptyConfig = nodePath.join(root, "gitconfig")
fs.writeFileSync(emptyConfig, "")
process.env["GIT_CONFIG_GLOBAL"] = emptyConfig
process.env["GIT_CONFIG_NOSYSTEM"] = "1"

/** A bare repository holding `files` on main, and the clone that plays upstream. */
const upstream = (name: string, files: Record<string, string>) => {
  const bare = nodePath.join(root, `${name}.git`)
  const work = nodePath.join(root, `${name}-work`)
  sh(root, "git", "init", "-q", "--bare", "-b", "main", bare)
  sh(root, "git", "init", "-q", "-b", "main", work)
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(nodePath.dirname(nodePath.join(work, p)), { recursive: true })
    fs.writeFileSync(nodePath.join(work, p), c)
  }
  sh(work, "git", "add", "-A")
  sh(work, "git", ...gitId, "commit", "-q", "-m", "units")
  sh(work, "git", "remote", "add", "origin", bare)
  sh(work, "git", "push", "-q", "origin", "main")
  const commit = (changes: Record<string, string>) => {
    for (const [p, c] of Object.entries(changes)) fs.writeFileSync(nodePath.join(work, p), c)
    sh(work, "git", "add", "-A")
    sh(work, "git", ...gitId, "commit", "-q", "-m", "upstream edits")
    sh(work, "git", "push", "-q", "origin", "main")
  }
  return { bare, commit }
}

/** A machine of its own (state dir and tool homes) for one corpus. */
const machine = (name: string) => {
  const env: Record<string, string> = { HOME: nodePath.join(root, name, "home") }
  for (const t of TOOLS) env[`AGENTSYNC_TOOL_HOME_${t.toUpperCase()}`] = nodePath.join(root, name, t)
  const layer = SkillSync.DefaultWithoutDependencies.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        storeLayer({ root: nodePath.join(root, name, "state"), env }),
        gitLayer.pipe(Layer.provide(shellLayer))
      )
    ),
    Layer.provideMerge(NodeContext.layer)
  )
  const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<typeof layer>>) =>
    Effect.runPromise(Effect.provide(effect, layer))
  return { home: (tool: string, p: string) => nodePath.join(root, name, tool, p), run }
}

// 1. The upstream repository.
const unitFiles = (i: number): Record<string, string> => {
  const body = `# unit ${i}\n\n${"Follow the steps carefully. ".repeat(20)}\n`
  if (i % 10 < 7) return { [`skills/s${i}/SKILL.md`]: body, [`skills/s${i}/reference.md`]: `ref ${i}\n` }
  if (i % 10 < 9) return { [`agents/a${i}.md`]: body }
  return { [`commands/c${i}.md`]: body }
}
const team = upstream(
  "team",
  Object.fromEntries(Array.from({ length: UNITS }, (_, i) => Object.entries(unitFiles(i))).flat())
)
const { run, home } = machine("team")

// The marketplace: plugins/<plugin>/{skills/<skill>/{SKILL.md,reference.md}, agents/<agent>.md, commands/<command>.md}.
const PLUGINS = 80
const marketFiles: Record<string, string> = { ".claude-plugin/marketplace.json": '{"name":"bench","plugins":[]}\n' }
const marketUnit = (p: number, k: number) =>
  `plugins/p${p}/${k < 3 ? `skills/p${p}-s${k}/SKILL.md` : k < 6 ? `agents/a${k}.md` : `commands/c${k}.md`}`
for (let p = 0; p < PLUGINS; p++) {
  marketFiles[`plugins/p${p}/.claude-plugin/plugin.json`] = `{"name":"p${p}"}\n`
  marketFiles[`plugins/p${p}/README.md`] = `# plugin ${p}\n`
  for (let k = 0; k < 8; k++) {
    marketFiles[marketUnit(p, k)] = `# plugin ${p} unit ${k}\n\n${"Follow the steps carefully. ".repeat(20)}\n`
    if (k < 3) marketFiles[`plugins/p${p}/skills/p${p}-s${k}/reference.md`] = `ref ${p} ${k}\n`
  }
}
const market = upstream("market", marketFiles)
const marketMachine = machine("market")

/** Median wall time, and the median CPU time of this process (robust to a machine busy with other work). */
const median = async (f: () => Promise<unknown>, repeat: number) => {
  await f()
  const samples: Array<number> = []
  const cpu: Array<number> = []
  for (let i = 0; i < repeat; i++) {
    const t = performance.now()
    const c = process.cpuUsage()
    await f()
    samples.push(performance.now() - t)
    const u = process.cpuUsage(c)
    cpu.push((u.user + u.system) / 1000)
  }
  samples.sort((a, b) => a - b)
  cpu.sort((a, b) => a - b)
  return { wall: samples[Math.floor(samples.length / 2)]!, cpu: cpu[Math.floor(cpu.length / 2)]! }
}
const medianSync = (f: () => void, repeat: number) => {
  f()
  const samples: Array<number> = []
  for (let i = 0; i < repeat; i++) {
    const t = performance.now()
    f()
    samples.push(performance.now() - t)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)]!
}

const main = async () => {
  // 2. Install for three tools, then 1% home edits and 1% upstream edits.
  const t0 = performance.now()
  const installed = await run(SkillSync.install({ uri: `git:${team.bare}`, name: "team", tools: [...TOOLS] }))
  const installMs = performance.now() - t0
  for (let i = 0; i < UNITS; i += 100)
    fs.writeFileSync(home("claude", Object.keys(unitFiles(i))[0]!), "edited at home\n")
  const upstreamEdits: Record<string, string> = {}
  for (let i = 50; i < UNITS; i += 100) upstreamEdits[Object.keys(unitFiles(i))[0]!] = "edited upstream\n"
  team.commit(upstreamEdits)

  // 3. Status and a dry-run sync over 2,000 units × 3 tools.
  let rows = 0
  const status = await median(async () => {
    rows = (await run(SkillSync.status())).rows.length
  }, 5)
  const statusMs = status.wall
  let planned: SyncReport | undefined
  const plan = await median(async () => {
    planned = await run(SkillSync.sync({ dryRun: true }))
  }, 5)
  const planMs = plan.wall

  // 4. The planner alone, over states of the same shape (hashes as the lock stores them).
  const states: Array<UnitState> = []
  const h = (s: string) => s.padEnd(64, "0").slice(0, 64)
  for (let i = 0; i < UNITS; i++) {
    const files = Object.fromEntries(
      Object.keys(unitFiles(i)).map((_, k) => [k === 0 ? "SKILL.md" : "reference.md", h((i * 7 + k).toString(16))])
    )
    const repo = i % 100 === 50 ? { ...files, "SKILL.md": h("e") } : files
    states.push({
      source: "team",
      unit: `u${i}`,
      readOnly: false,
      repo,
      tools: TOOLS.map((tool) => ({
        tool,
        base: files,
        home: tool === "claude" && i % 100 === 0 ? { ...files, "SKILL.md": h("f") } : files
      }))
    })
  }
  const plannerMs = medianSync(() => planSync(states), 21)
  const naive = (units: ReadonlyArray<UnitState>) => {
    const canon = (s: Record<string, string> | undefined) =>
      s === undefined
        ? "null"
        : JSON.stringify(
            Object.keys(s)
              .sort()
              .map((k) => [k, s[k]])
          )
    let changed = 0
    for (const u of units)
      for (const t of u.tools) if (canon(t.home) !== canon(t.base) || canon(u.repo) !== canon(t.base)) changed++
    return changed
  }
  const naiveMs = medianSync(() => naive(states), 21)

  // 5. Baselines over the same home files.
  const homeFiles = TOOLS.flatMap((t) => sh(root, "find", `team/${t}`, "-type", "f").trim().split("\n"))
  const list = nodePath.join(root, "files.txt")
  fs.writeFileSync(list, `${homeFiles.join("\n")}\n`)
  const hashObjectMs = (
    await median(async () => {
      execFileSync("git", ["hash-object", "--stdin-paths"], {
        cwd: root,
        input: fs.readFileSync(list),
        maxBuffer: 1 << 26
      })
    }, 5)
  ).wall
  const sha256sumMs = (
    await median(async () => {
      execFileSync("sh", ["-c", "xargs -d '\\n' sha256sum < files.txt > /dev/null"], { cwd: root })
    }, 5)
  ).wall

  // 6. The marketplace: install (layout detected), then 1% edited at home and upstream, then status and a dry run.
  const m0 = performance.now()
  const marketInstalled = await marketMachine.run(
    SkillSync.install({ uri: `git:${market.bare}`, name: "market", tools: [...TOOLS] })
  )
  const marketInstallMs = performance.now() - m0
  const marketUnits = marketInstalled.report.summary.toHome / TOOLS.length
  for (let p = 0; p < PLUGINS; p += 10)
    fs.writeFileSync(marketMachine.home("claude", `skills/p${p}-s0/SKILL.md`), "edited at home\n")
  const marketEdits: Record<string, string> = {}
  for (let p = 5; p < PLUGINS; p += 10) marketEdits[marketUnit(p, 4)] = "edited upstream\n"
  market.commit(marketEdits)
  let marketRows = 0
  const marketStatus = await median(async () => {
    marketRows = (await marketMachine.run(SkillSync.status())).rows.length
  }, 5)
  let marketPlanned: SyncReport | undefined
  const marketPlan = await median(async () => {
    marketPlanned = await marketMachine.run(SkillSync.sync({ dryRun: true }))
  }, 5)
  const marketHomeFiles = TOOLS.flatMap((t) => sh(root, "find", `market/${t}`, "-type", "f").trim().split("\n"))
  fs.writeFileSync(list, `${marketHomeFiles.join("\n")}\n`)
  const marketSha = (
    await median(async () => {
      execFileSync("sh", ["-c", "xargs -d '\\n' sha256sum < files.txt > /dev/null"], { cwd: root })
    }, 5)
  ).wall

  const f = (ms: number) => `${ms.toFixed(1)} ms`
  console.log(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} on ${os.cpus().length} cores`
  )
  console.log(
    `skill sync benchmark: ${UNITS} units × ${TOOLS.length} tools (${homeFiles.length} home files), 1% edited at home, 1% upstream`
  )
  console.log(
    `  install (clone + deploy to 3 homes)      ${f(installMs)} (${installed.report.summary.toHome} deployments)`
  )
  console.log(
    `  status                                   ${f(statusMs)} wall, ${f(status.cpu)} cpu (${rows} rows)   budget 1000 ms`
  )
  console.log(
    `  sync --dry-run (fetch, snapshot, plan)   ${f(planMs)} wall, ${f(plan.cpu)} cpu (${planned?.summary.toHome} to home, ${planned?.summary.toRepo} to repo)   budget 1000 ms`
  )
  console.log(`  planner alone (${states.length * TOOLS.length} unit × tool)          ${f(plannerMs)}   budget 50 ms`)
  console.log(
    `  baseline: naive sorted-JSON planner      ${f(naiveMs)}   ratio planner/naive ${(plannerMs / naiveMs).toFixed(2)}`
  )
  console.log(
    `  baseline: git hash-object --stdin-paths  ${f(hashObjectMs)}   ratio status/hash-object ${(statusMs / hashObjectMs).toFixed(2)}`
  )
  console.log(
    `  baseline: sha256sum over the same files  ${f(sha256sumMs)}   ratio status/sha256sum ${(statusMs / sha256sumMs).toFixed(2)}`
  )
  console.log(
    `plugin marketplace: ${PLUGINS} plugins, ${marketUnits} units (skills, agents, commands in plugin folders) × ${TOOLS.length} tools (${marketHomeFiles.length} home files), layout detected`
  )
  console.log(
    `  install (clone + deploy to 3 homes)      ${f(marketInstallMs)} (${marketInstalled.report.summary.toHome} deployments)`
  )
  console.log(
    `  status                                   ${f(marketStatus.wall)} wall, ${f(marketStatus.cpu)} cpu (${marketRows} rows)   budget 1000 ms`
  )
  console.log(
    `  sync --dry-run                           ${f(marketPlan.wall)} wall, ${f(marketPlan.cpu)} cpu (${marketPlanned?.summary.toHome} to home, ${marketPlanned?.summary.toRepo} to repo)   budget 1000 ms`
  )
  console.log(
    `  baseline: sha256sum over the same files  ${f(marketSha)}   ratio status/sha256sum ${(marketStatus.wall / marketSha).toFixed(2)}`
  )
  const ok = statusMs < 1000 && planMs < 1000 && plannerMs < 50 && marketStatus.wall < 1000 && marketPlan.wall < 1000
  console.log(ok ? "within budget" : "OVER BUDGET")
  if (process.env["BENCH_KEEP"]) console.log(`kept ${root}`)
  else fs.rmSync(root, { recursive: true, force: true })
  if (!ok) process.exitCode = 1
}

main().catch((e) => {
  console.error(e)
  fs.rmSync(root, { recursive: true, force: true })
  process.exitCode = 1
})
