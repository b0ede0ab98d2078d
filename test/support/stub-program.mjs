// A stand-in for a program that cannot run here (docker without an engine, an operator's release hook): it
// records its argv, stdin, environment and working directory as one JSON line in $STUB_LOG and behaves as told.
//   argv[2]           the name it was called as (docker, hook, …)
//   $STUB_DIR/fail    "<subcommand> <exit code> [text]": exit so on that subcommand (e.g. "push 1"), after printing to
//                     stderr; with a text, only when an argument contains it
//   $STUB_DIR/leak    present: push prints the credential it finds, the hook prints its environment's secrets
//   $STUB_DIR/sleep   "<subcommand> <seconds>": sleep so long before answering that subcommand

import { createHash } from "node:crypto"
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const [name, ...args] = process.argv.slice(2)
const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const stdin = Buffer.concat(chunks).toString()
const dir = process.env.STUB_DIR ?? "."
appendFileSync(
  process.env.STUB_LOG ?? join(dir, "calls.jsonl"),
  `${JSON.stringify({ name, args, stdin, env: process.env, cwd: process.cwd() })}\n`
)

const read = (file) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), "utf8").trim() : "")
const sub = name === "hook" ? "hook" : args[0]
const [sleepOn, seconds] = read("sleep").split(/\s+/)
if (sleepOn === sub) await new Promise((r) => setTimeout(r, Number(seconds) * 1000))
const [failOn, code, match] = read("fail").split(/\s+/)
if (failOn === sub && (match === undefined || args.some((a) => a.includes(match)))) {
  process.stderr.write(`${name} ${sub}: something went wrong\nerror: told to fail with ${code}\n`)
  process.exit(Number(code))
}
switch (sub) {
  case "build":
    process.stdout.write("Step 1/2 : FROM scratch\nStep 2/2 : COPY . /\nSuccessfully built\n")
    break
  case "login": {
    // Like docker: the credential lands in $DOCKER_CONFIG/config.json.
    const config = process.env.DOCKER_CONFIG
    if (config) {
      mkdirSync(config, { recursive: true })
      const user = args[args.indexOf("-u") + 1]
      writeFileSync(
        join(config, "config.json"),
        JSON.stringify({ auths: { [args[1]]: { auth: Buffer.from(`${user}:${stdin}`).toString("base64") } } })
      )
    }
    process.stdout.write("Login Succeeded\n")
    break
  }
  case "push": {
    const digest = createHash("sha256").update(args.join(" ")).digest("hex")
    process.stdout.write(
      `The push refers to repository [${args[1]}]\n${args[1].split(":").at(-1)}: digest: sha256:${digest} size: 528\n`
    )
    if (existsSync(join(dir, "leak")) && process.env.DOCKER_CONFIG) {
      const config = readFileSync(join(process.env.DOCKER_CONFIG, "config.json"), "utf8")
      const auth = Object.values(JSON.parse(config).auths)[0].auth
      process.stderr.write(`debug: config ${config}\ndebug: credential ${Buffer.from(auth, "base64").toString()}\n`)
    }
    break
  }
  case "hook":
    process.stdout.write(`deploying ${args.join(" ")}\n`)
    if (existsSync(join(dir, "leak"))) process.stdout.write(`debug: FLY_API_TOKEN=${process.env.FLY_API_TOKEN}\n`)
    break
}
