/** `agentsync demo`: the whole loop on the embedded defaults, each step a real agentsync command shown as it runs. */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Layer, Option, Schema } from "effect"
import { groups } from "../domain/text.js"
import { CommandFailed, InvalidInput, type IoError, ioError as io } from "../errors.js"
import { Git, layer as GitLayer } from "../services/Git.js"
import * as Shell from "../services/Shell.js"

const dir = Options.text("dir").pipe(
  Options.withDescription("work in this folder (kept afterwards) instead of a temporary one"),
  Options.optional
)
const from = Options.text("from").pipe(
  Options.withDescription("the project to start from (default: the bundled examples/project)"),
  Options.optional
)

/** The bundled example: beside dist/ when running the built CLI, two levels up from src/cli/ otherwise. */
const exampleProject = () =>
  ["../examples/project", "../../examples/project"]
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
    .find((p) => existsSync(p)) ?? fileURLToPath(new URL("../examples/project", import.meta.url))
const self = () => process.argv[1] ?? fileURLToPath(import.meta.url)

interface Step {
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly env?: Record<string, string>
  /** Show at most this many lines of output. */
  readonly lines?: number
  /** Exit codes that are part of the story (e.g. a diff that reports changes). */
  readonly ok?: ReadonlyArray<number>
}

/** The environment every step starts from: none of the user's own project settings leak into the demo. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(DATABASE_URL|AGENTSYNC_)/.test(k)) env[k] = v
  }
  return env
}

const indent = (text: string, max: number) => {
  const lines = text
    .trimEnd()
    .split("\n")
    .filter((l) => l !== "")
  const shown = lines.slice(0, max).map((l) => `    ${l}`)
  if (lines.length > max) shown.push(`    … (${lines.length - max} more lines)`)
  return shown.join("\n")
}

/** Runs one agentsync command as a child process, printing the command and (part of) its output. */
const run = (step: Step) =>
  Effect.gen(function* () {
    const shown = step.args.map((a) => (/^[\w./:=@,-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")
    yield* Console.log(`\n$ agentsync ${shown}`)
    const result = yield* Effect.async<{ code: number; stdout: string; stderr: string }, IoError>((resume) => {
      const child = spawn(process.execPath, [self(), ...step.args], {
        cwd: step.cwd,
        env: { ...cleanEnv(), ...step.env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (d) => {
        stdout += d
      })
      child.stderr.on("data", (d) => {
        stderr += d
      })
      child.on("error", (e) => resume(Effect.fail(io(self(), "cannot start")(e))))
      child.on("close", (code) => resume(Effect.succeed({ code: code ?? 1, stdout, stderr })))
    })
    const out = [result.stdout, result.stderr].filter((s) => s.trim() !== "").join("\n")
    if (out !== "" && step.lines !== 0) yield* Console.log(indent(out, step.lines ?? 12))
    if (!(step.ok ?? [0]).includes(result.code)) {
      return yield* new CommandFailed({ command: `agentsync ${shown}`, exitCode: result.code, stderr: result.stderr })
    }
    return result
  })

/** Starts `agentsync serve` in the background and waits for the address it prints. */
const startServer = (cwd: string, data: string) =>
  Effect.acquireRelease(
    Effect.async<{ child: ChildProcess; url: string }, CommandFailed>((resume) => {
      const child = spawn(process.execPath, [self(), "--json", "serve", "--port", "0", "--data", data], {
        cwd,
        env: cleanEnv(),
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      let done = false
      child.stdout.on("data", (d) => {
        stdout += d
        const match = groups(/"url":\s*"([^"]+)"/, stdout, 1)
        if (match && !done) {
          done = true
          resume(Effect.succeed({ child, url: match[0] }))
        }
      })
      child.stderr.on("data", (d) => {
        stderr += d
      })
      child.on("close", (code) => {
        if (!done) {
          done = true
          resume(Effect.fail(new CommandFailed({ command: "agentsync serve", exitCode: code ?? 1, stderr })))
        }
      })
    }),
    ({ child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null) return resume(Effect.void)
        child.once("close", () => resume(Effect.void))
        child.kill("SIGTERM")
      })
  )

/** What `agentsync --json tenant create` prints. */
const CreatedTenant = Schema.parseJson(Schema.Struct({ tenant_id: Schema.String, token: Schema.String }))

const section = (title: string) => Console.log(`\n== ${title}`)

const program = (workDir: string, source: string) =>
  Effect.gen(function* () {
    const project = nodePath.join(workDir, "project")
    const copy = nodePath.join(workDir, "copy")
    const home = nodePath.join(workDir, "home")
    yield* Effect.tryPromise({
      try: async () => {
        await rm(workDir, { recursive: true, force: true })
        await mkdir(workDir, { recursive: true })
        // Leave out a state folder `.agentsync/` a run may have left there, not files such as `.agentsyncignore`.
        await cp(source, project, { recursive: true, filter: (p) => !p.split(nodePath.sep).includes(".agentsync") })
      },
      catch: io(workDir, "cannot prepare the demo folder")
    })
    yield* Console.log(`agentsync demo in ${workDir}: a copy of ${nodePath.relative(process.cwd(), source) || source}`)

    yield* section("1. validate the project")
    yield* run({ args: ["validate"], cwd: project })

    yield* section("2. local sync: the services/ tree into the project database (embedded PostgreSQL)")
    yield* run({ args: ["local", "sync", "--to-db"], cwd: project })
    const sql = "UPDATE agents SET description = 'Answers questions; edited in the database.' WHERE id = 'support'"
    yield* Console.log(`\nSQL> ${sql}`)
    const [{ SqlClient }, { Database }] = yield* Effect.promise(() =>
      Promise.all([import("@effect/sql/SqlClient"), import("../services/ProjectDatabase.js")])
    )
    yield* Effect.flatMap(SqlClient, (db) => db.unsafe(sql)).pipe(
      Effect.provide(
        Database.layerMigrated({ url: Option.none(), dataDir: nodePath.join(project, ".agentsync", "pgdata") })
      )
    )
    yield* run({ args: ["local", "diff"], cwd: project })
    yield* run({ args: ["local", "sync", "--to-disk"], cwd: project })
    const config = yield* Effect.tryPromise({
      try: () => readFile(nodePath.join(project, "services/agents/support/config.yaml"), "utf8"),
      catch: io(project, "cannot read")
    })
    yield* Console.log(
      `    services/agents/support/config.yaml now says: ${config.split("\n").find((l) => l.startsWith("description:"))}`
    )

    yield* section("3. file sync with a tenant server (agentsync serve on loopback, embedded database)")
    const created = yield* run({
      args: ["--json", "tenant", "create", "demo", "--data", workDir],
      cwd: workDir,
      lines: 0
    })
    const tenant = yield* Schema.decodeUnknown(CreatedTenant)(created.stdout).pipe(
      Effect.mapError((e) => new InvalidInput({ field: "tenant create --json", reason: e.message }))
    )
    yield* Console.log(`    tenant ${tenant.tenant_id} created; its token goes in AGENTSYNC_TOKEN (not shown)`)
    const { url } = yield* startServer(workDir, workDir)
    yield* Console.log(`    agentsync serve listening on ${url}`)
    const remote = { AGENTSYNC_DIRECT_URL: url, AGENTSYNC_TOKEN: tenant.token }
    yield* run({ args: ["files", "push"], cwd: project, env: remote, lines: 6 })
    const post = nodePath.join(project, "services/content/blog/hello-world/index.md")
    yield* Effect.tryPromise({
      try: async () => writeFile(post, `${await readFile(post, "utf8")}\nAn edit made on the laptop.\n`),
      catch: io(post, "cannot edit")
    })
    yield* Console.log("\n(edit services/content/blog/hello-world/index.md)")
    yield* run({ args: ["files", "diff"], cwd: project, env: remote, lines: 6 })
    yield* run({ args: ["files", "push"], cwd: project, env: remote, lines: 6 })
    // A second machine: the project's agentsync.yaml (from its repository) and an empty services/ to pull into.
    yield* Effect.tryPromise({
      try: async () => {
        await mkdir(nodePath.join(copy, "services"), { recursive: true })
        await cp(nodePath.join(project, "agentsync.yaml"), nodePath.join(copy, "agentsync.yaml"))
      },
      catch: io(copy, "cannot create")
    })
    yield* run({ args: ["--services", "services", "files", "pull"], cwd: copy, env: remote, lines: 6 })
    const same = yield* Effect.tryPromise({
      try: async () =>
        (await readFile(post, "utf8")) ===
        (await readFile(nodePath.join(copy, "services/content/blog/hello-world/index.md"), "utf8")),
      catch: io(copy, "cannot compare")
    })
    yield* Console.log(`    the second copy has the edit: ${same ? "yes" : "NO"}`)

    yield* section("4. skill sync: a skills repository deployed into a tool home, an edit in the home sent back")
    const repo = nodePath.join(workDir, "skills-src")
    const bare = nodePath.join(workDir, "skills.git")
    const git = yield* Git
    const shell = yield* Shell.Shell
    yield* Effect.tryPromise({
      try: async () => {
        for (const id of ["kb-search", "cite-sources", "changelog"]) {
          await mkdir(nodePath.join(repo, "skills", id), { recursive: true })
          await cp(
            nodePath.join(project, "services/skills", id, "SKILL.md"),
            nodePath.join(repo, "skills", id, "SKILL.md")
          )
        }
      },
      catch: io(repo, "cannot prepare the skills repository")
    })
    yield* shell.exec("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare])
    yield* shell.exec("git", ["-C", repo, "init", "--quiet", "--initial-branch=main"])
    yield* git.add(repo, ["skills"])
    yield* git.commit(repo, "skills: first version")
    yield* shell.exec("git", ["-C", repo, "push", "--quiet", bare, "main"])
    const skillEnv = {
      AGENTSYNC_HOME: nodePath.join(home, ".agentsync"),
      AGENTSYNC_TOOL_HOME_CLAUDE: nodePath.join(home, ".claude")
    }
    yield* run({ args: ["skill", "install", `git:${bare}`, "--tools", "claude"], cwd: workDir, env: skillEnv })
    const deployed = nodePath.join(home, ".claude/skills/kb-search/SKILL.md")
    yield* Effect.tryPromise({
      try: async () =>
        writeFile(deployed, `${await readFile(deployed, "utf8")}\n4. Prefer articles updated this year.\n`),
      catch: io(deployed, "cannot edit")
    })
    yield* Console.log("\n(edit ~/.claude/skills/kb-search/SKILL.md in the tool home)")
    yield* run({ args: ["skill", "status"], cwd: workDir, env: skillEnv })
    yield* run({ args: ["skill", "sync", "--yes"], cwd: workDir, env: skillEnv })
    const log = yield* shell.exec("git", ["-C", bare, "log", "--format=%s", "-n", "2", "main"])
    yield* Console.log(`\n$ git -C skills.git log --format=%s\n${indent(new TextDecoder().decode(log.stdout), 4)}`)

    yield* section("5. scheduled jobs: the jobs of agentsync.yaml, their next fires, one of them run now")
    yield* run({ args: ["jobs", "list"], cwd: project })
    yield* run({ args: ["jobs", "run", "--once", "--job", "access_control_sync"], cwd: project, lines: 4 })
    yield* run({ args: ["jobs", "history"], cwd: project })

    yield* section("done")
    yield* Console.log(
      "Every step above is an agentsync command you can run yourself; `agentsync --help` lists them all."
    )
  }).pipe(Effect.scoped)

export const demo = Command.make("demo", { dir, from }, (o) =>
  Effect.gen(function* () {
    const keep = Option.isSome(o.dir)
    const workDir = Option.isSome(o.dir)
      ? nodePath.resolve(o.dir.value)
      : yield* Effect.tryPromise({
          try: () => mkdtemp(nodePath.join(tmpdir(), "agentsync-demo-")),
          catch: io(tmpdir(), "cannot create")
        })
    const source = Option.isSome(o.from) ? nodePath.resolve(o.from.value) : exampleProject()
    yield* program(workDir, source).pipe(
      Effect.ensuring(
        keep
          ? Console.log(`\n(the demo folder is kept: ${workDir})`)
          : Effect.promise(() => rm(workDir, { recursive: true, force: true }))
      )
    )
  }).pipe(Effect.provide(Layer.provideMerge(GitLayer, Shell.layer)))
).pipe(
  Command.withDescription(
    "the whole loop on the embedded defaults: validate, local sync, file sync with a tenant, skill sync, scheduled jobs"
  )
)
