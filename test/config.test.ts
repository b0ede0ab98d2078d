import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import { afterAll, describe, expect } from "vitest"
import { loadConfig } from "../src/config.js"
import { resolveDeploy } from "../src/programs/deploy.js"

const dirs: Array<string> = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** Loads a project whose agentsync.yaml is `yaml`, with an empty environment. */
const load = (yaml: string) => {
  const root = mkdtempSync(join(tmpdir(), "agentsync-config-"))
  dirs.push(root)
  writeFileSync(join(root, "agentsync.yaml"), yaml)
  return loadConfig({ cwd: root }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())), Effect.either)
}

describe("agentsync.yaml: one reader for every section, every problem at its line", () => {
  it.effect("a deploy problem and a jobs problem in one file: both named with their lines, the first leading", () =>
    Effect.gen(function* () {
      const r = yield* load(
        [
          "tenant_id: t",
          "deploy:",
          "  app: web",
          "  builder: podman",
          "jobs:",
          "  - name: x",
          "    run: db-push",
          "    cron: '61 * * * *'",
          ""
        ].join("\n")
      )
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isRight(r)) return
      const e = r.left
      expect(e._tag).toBe("InvalidInput")
      if (e._tag !== "InvalidInput") return
      expect(e.line).toBe(4)
      expect(e.field).toBe("deploy.builder")
      // The malformed optional key's `undefined` alternative is not echoed as a second problem.
      expect(e.message).not.toContain("Expected undefined")
      // A literal union's members are one problem, not one per member.
      expect(e.reason).toMatch(/^Expected "docker" \| "buildah", actual "podman"\n/)
      expect(e.message).toMatch(/agentsync\.yaml:8: jobs\.0\.cron: invalid cron expression "61 \* \* \* \*"/)
      expect(e.message.split("\n")).toHaveLength(2)
    })
  )

  it.effect("a token is refused at its line, and its value is never shown", () =>
    Effect.gen(function* () {
      const r = yield* load("tenant_id: t\ntoken: s3cret-value\n")
      expect(Either.isLeft(r) && r.left._tag === "InvalidInput" && r.left.line).toBe(2)
      const message = Either.isLeft(r) ? r.left.message : ""
      expect(message).toMatch(/agentsync\.yaml:2: token: a token never lives in the project file; set AGENTSYNC_TOKEN/)
      expect(message).not.toContain("s3cret-value")
    })
  )

  it.effect("YAML that does not parse names its line", () =>
    Effect.gen(function* () {
      const r = yield* load("tenant_id: t\njobs: [\n")
      expect(Either.isLeft(r) && r.left.message).toMatch(/agentsync\.yaml:\d+: invalid YAML/)
    })
  )

  it.effect("an empty file is an empty project file, and the deploy and jobs sections decode together", () =>
    Effect.gen(function* () {
      const empty = yield* load("")
      expect(Either.isRight(empty) && empty.right.project).toEqual({})
      const both = yield* load(
        "deploy:\n  app: web\n  registry: r.example.com\njobs:\n  - name: x\n    run: db-push\n    every: 1h\n"
      )
      expect(Either.isRight(both) && both.right.project.deploy?.app).toBe("web")
      expect(Either.isRight(both) && both.right.project.jobs?.map((j) => j.name)).toEqual(["x"])
    })
  )
})

describe("the deploy: block, checked before anything runs: each problem names agentsync.yaml and its line", () => {
  /** Loads the project and resolves its deploy block; `dockerfile`: whether a Dockerfile sits at the root. */
  const resolve = (yaml: string, dockerfile = true) => {
    const root = mkdtempSync(join(tmpdir(), "agentsync-config-"))
    dirs.push(root)
    writeFileSync(join(root, "agentsync.yaml"), yaml)
    if (dockerfile) writeFileSync(join(root, "Dockerfile"), "FROM scratch\n")
    return loadConfig({ cwd: root }).pipe(
      Effect.flatMap((config) => resolveDeploy(config)),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
      Effect.either
    )
  }

  it.effect("a missing or malformed app, registry or Dockerfile, and a missing section", () =>
    Effect.gen(function* () {
      const cases: Array<[string, boolean, RegExp]> = [
        ["deploy:\n  registry: r.example.com\n", true, /agentsync\.yaml:2: deploy\.app: missing/],
        ["tenant_id: x\ndeploy:\n  app: web\n", true, /agentsync\.yaml:3: deploy\.registry: missing/],
        [
          "deploy:\n  app: web\n  registry: r.example.com\n",
          false,
          /agentsync\.yaml:2: deploy\.dockerfile: no Dockerfile at .*Dockerfile/
        ],
        [
          "deploy:\n  app: web\n  registry: r.example.com\n  dockerfile: docker/Prod.Dockerfile\n",
          true,
          /agentsync\.yaml:4: deploy\.dockerfile: no Dockerfile at/
        ],
        [
          "deploy:\n  app: Web App\n  registry: r.example.com\n",
          true,
          /agentsync\.yaml:2: deploy\.app: an app name is lowercase/
        ],
        [
          "deploy:\n  app: web\n  registry: https://r.example.com\n",
          true,
          /agentsync\.yaml:3: deploy\.registry: a registry is host/
        ],
        ["tenant_id: x\n", true, /agentsync\.yaml: deploy: no deploy: section/],
        // A deploy: block that does not read as agentsync.yaml at all fails in the reader, like any other section.
        [
          "deploy:\n  app: web\n  registry: r.example.com\n  build: make\n",
          true,
          /agentsync\.yaml:4: deploy\.build: Expected ReadonlyArray/
        ]
      ]
      for (const [yaml, dockerfile, expected] of cases) {
        const r = yield* resolve(yaml, dockerfile)
        expect(Either.isLeft(r) && r.left._tag, yaml).toBe("InvalidInput")
        expect(Either.isLeft(r) ? r.left.message : "", yaml).toMatch(expected)
      }
      const fine = yield* resolve("deploy:\n  app: web\n  registry: r.example.com\n")
      expect(Either.isRight(fine) && [fine.right.app, fine.right.registry]).toEqual(["web", "r.example.com"])
    })
  )
})

describe("precedence: flags > environment > file > defaults", () => {
  const withEnv = (yaml: string, env: ReadonlyArray<readonly [string, string]>) => {
    const root = mkdtempSync(join(tmpdir(), "agentsync-config-"))
    dirs.push(root)
    writeFileSync(join(root, "agentsync.yaml"), yaml)
    return loadConfig({ cwd: root }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(env))))
  }

  it.effect("AGENTSYNC_API_URL in the environment beats direct_url in the file: the endpoint is one setting", () =>
    Effect.gen(function* () {
      const c = yield* withEnv("direct_url: http://file.example\ntenant_id: t\n", [
        ["AGENTSYNC_API_URL", "http://env.example"]
      ])
      expect(c.apiUrl).toBe("http://env.example")
      expect(c.directUrl).toBeUndefined()
      expect(c.tenantId).toBe("t")
      const fileOnly = yield* withEnv("direct_url: http://file.example\n", [])
      expect(fileOnly.directUrl).toBe("http://file.example")
      const envTenant = yield* withEnv("tenant_id: file\n", [["AGENTSYNC_TENANT_ID", "env"]])
      expect(envTenant.tenantId).toBe("env")
    })
  )
})
