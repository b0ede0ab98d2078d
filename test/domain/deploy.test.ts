import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck, Option } from "effect"
import {
  buildImageStep,
  canTransition,
  checkApp,
  checkRegistry,
  checkRollbackTarget,
  credentialForms,
  deployTag,
  digestFromPush,
  hookTemplate,
  isLoopbackRegistry,
  loginStep,
  makeRedactor,
  parseDigestImage,
  previousRelease,
  pushStep,
  RELEASE_STATUSES,
  type ReleaseStatus,
  redactFields,
  renderHook,
  showArgv,
  TRANSITIONS,
  WITHHELD
} from "../../src/domain/deploy/index.js"
import { CommandFailed } from "../../src/errors.js"

const D1 = `sha256:${"a".repeat(64)}`
const D2 = `sha256:${"b".repeat(64)}`
const D3 = `sha256:${"c".repeat(64)}`

describe("the redactor", () => {
  it.prop(
    "never leaves a secret in what it returns, whatever the secrets and the text",
    [
      FastCheck.array(FastCheck.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }),
      FastCheck.array(
        FastCheck.oneof(FastCheck.string({ maxLength: 20 }), FastCheck.constantFrom("*", "**", "***", "\n")),
        { maxLength: 12 }
      )
    ],
    ([secrets, parts]) => {
      // The text is built around the secrets, so they do occur in it, next to masks and stars.
      const text = parts.map((p, i) => `${p}${secrets[i % secrets.length]}`).join("")
      const out = makeRedactor(secrets)(text)
      for (const s of secrets)
        for (const piece of s.split(/\r?\n/)) if (piece.length >= 4 || piece === s) expect(out).not.toContain(piece)
    }
  )

  it("withholds a line without showing a secret the marker itself holds", () => {
    // A secret of stars is rebuilt by the masks, so the line is withheld; "secret" and " " are in the marker's words.
    for (const other of ["secret", " ", "line"]) {
      const out = makeRedactor(["*", other])("a ** b")
      expect(out).not.toContain(other)
      expect(out).not.toContain("*")
    }
    expect(makeRedactor(["*"])("a ** b")).toBe(WITHHELD)
  })

  it.prop("leaves text without secrets alone", [FastCheck.string({ maxLength: 40 })], ([text]) => {
    const secret = "\u0000never-in-the-text\u0000"
    expect(makeRedactor([secret])(text)).toBe(text)
  })

  it("masks the forms a registry password travels in, and withholds a line the masks themselves would rebuild", () => {
    const redact = makeRedactor(credentialForms("bot", "p@ss word"))
    expect(redact("pw=p@ss word enc=p%40ss%20word auth=Ym90OnBAc3Mgd29yZA== end")).toBe("pw=*** enc=*** auth=*** end")
    expect(makeRedactor(["**"])("a**b")).toBe(WITHHELD)
    expect(makeRedactor([""])("untouched")).toBe("untouched")
  })

  it("redacts an error's fields and keeps its class and message shape", () => {
    const error = new CommandFailed({
      command: "docker login -p hunter22",
      exitCode: 1,
      stderr: "bad hunter22",
      step: "login"
    })
    const clean = redactFields(error, makeRedactor(["hunter22"]))
    expect(clean).toBeInstanceOf(CommandFailed)
    expect(clean.message).toBe("login: docker login -p *** exited with 1:\nbad ***")
  })

  it("shows an argv quoted where a shell would need it, redacted", () => {
    expect(
      showArgv(["docker", "build", "-t", "r/a:1", "my dir", "it's", "--password=xyzzy1"], makeRedactor(["xyzzy1"]))
    ).toBe("docker build -t r/a:1 'my dir' 'it'\\''s' --password=***")
  })
})

describe("image names", () => {
  it("generates a tag from the time and the short sha", () => {
    expect(deployTag(1700000000.9, "abc1234")).toBe("deploy-1700000000-abc1234")
    expect(deployTag(1700000000)).toBe("deploy-1700000000")
  })

  it("reads the digest from a push, the last one when there are several", () => {
    expect(digestFromPush(`v1: digest: ${D1} size: 528\nlatest: digest: ${D2} size: 528\n`)).toBe(D2)
    expect(digestFromPush("pushed, no digest here")).toBeUndefined()
  })

  it("accepts images only by digest, with a valid repository", () => {
    expect(parseDigestImage(`registry.example.com/acme/web@${D1}`)).toEqual({
      repository: "registry.example.com/acme/web",
      digest: D1
    })
    expect(parseDigestImage(`127.0.0.1:5000/web@${D1}`)).toEqual({ repository: "127.0.0.1:5000/web", digest: D1 })
    for (const bad of [
      `registry.example.com/web:latest`,
      `web@${D1}`,
      `registry.example.com/web@sha256:abc`,
      `-x/web@${D1}`,
      `r.io/Web@${D1}`
    ]) {
      expect(parseDigestImage(bad)).toBeUndefined()
    }
  })

  it("checks registries and app names; plain HTTP only for a registry on this machine", () => {
    expect(checkRegistry("registry.example.com/team")).toBeUndefined()
    expect(checkRegistry("localhost:5000")).toBeUndefined()
    expect(checkRegistry("https://registry.example.com")).toBeDefined()
    expect(checkRegistry("-oProxyCommand=x")).toBeDefined()
    expect(checkApp("web/api")).toBeUndefined()
    expect(checkApp("Web App")).toBeDefined()
    expect(isLoopbackRegistry("127.0.0.1:5000/x")).toBe(true)
    expect(isLoopbackRegistry("localhost:5000")).toBe(true)
    expect(isLoopbackRegistry("127.example.com")).toBe(false)
    expect(isLoopbackRegistry("registry.example.com")).toBe(false)
  })

  it("gives each builder its commands: the password only ever on stdin, the credential in the temporary config", () => {
    const access = {
      image: "127.0.0.1:5000/web:v1",
      registry: "127.0.0.1:5000",
      username: "bot",
      configDir: "/tmp/cfg"
    }
    expect(
      buildImageStep({ builder: "buildah", image: "r/web:v1", dockerfile: "/p/Dockerfile", context: "/p" }).argv
    ).toEqual(["buildah", "bud", "-f", "/p/Dockerfile", "-t", "r/web:v1", "/p"])
    expect(loginStep({ ...access, builder: "buildah" })).toEqual({
      argv: [
        "buildah",
        "login",
        "--authfile",
        "/tmp/cfg/config.json",
        "--tls-verify=false",
        "-u",
        "bot",
        "--password-stdin",
        "127.0.0.1:5000"
      ],
      env: { DOCKER_CONFIG: "/tmp/cfg" },
      stdin: "registry password"
    })
    expect(
      pushStep({ ...access, builder: "buildah", registry: "r.example.com", image: "r.example.com/web:v1" }).argv
    ).toEqual([
      "buildah",
      "push",
      "--authfile",
      "/tmp/cfg/config.json",
      "--digestfile",
      "/tmp/cfg/digest",
      "r.example.com/web:v1",
      "docker://r.example.com/web:v1"
    ])
    expect(loginStep({ ...access, builder: "docker" }).argv).toEqual([
      "docker",
      "login",
      "127.0.0.1:5000",
      "-u",
      "bot",
      "--password-stdin"
    ])
  })
})

describe("the release status machine", () => {
  const status = FastCheck.constantFrom(...RELEASE_STATUSES)

  it.prop(
    "final states have no way out; every path from pending ends active, failed or superseded",
    [FastCheck.array(status, { maxLength: 8 })],
    ([moves]) => {
      let at: ReleaseStatus = "pending"
      for (const to of moves) if (canTransition(at, to)) at = to
      expect(TRANSITIONS.failed).toEqual([])
      expect(TRANSITIONS.superseded).toEqual([])
      // Nothing ever goes back to pending, and an active release can only be superseded.
      for (const from of RELEASE_STATUSES) expect(canTransition(from, "pending")).toBe(false)
      expect(TRANSITIONS.active).toEqual(["superseded"])
      expect(RELEASE_STATUSES).toContain(at)
    }
  )

  it("renders the hook template in place, never splitting an argument, and refuses unknown placeholders", () => {
    const vars = { image: "r/web@sha256:x y", digest: "sha256:x", release: "7", tenant: "acme" }
    expect(renderHook(["deploy", "--image={image}", "{release}", "{tenant}-{digest}"], vars)).toEqual([
      "deploy",
      "--image=r/web@sha256:x y",
      "7",
      "acme-sha256:x"
    ])
    expect(hookTemplate(["fly", "deploy", "--image", "{image}"])).toEqual(
      Either.right(["fly", "deploy", "--image", "{image}"])
    )
    expect(Either.getLeft(hookTemplate(["x", "{imag}"]))).toEqual(
      Option.some(expect.stringMatching(/unknown placeholder \{imag\}/))
    )
    expect(hookTemplate([])).toEqual(Either.left("the hook is an argv with at least a program"))
    expect(hookTemplate(["", "x"])).toEqual(Either.left("the hook is an argv with at least a program"))
  })

  it("rolls back by default to the newest earlier release that was active and runs another image", () => {
    const rel = (number: number, status: ReleaseStatus, digest: string) => ({ number, status, digest })
    const history = [
      rel(5, "active", D3),
      rel(4, "failed", D2),
      rel(3, "superseded", D3),
      rel(2, "superseded", D2),
      rel(1, "superseded", D1)
    ]
    expect(previousRelease(history)?.number).toBe(2)
    expect(previousRelease([rel(1, "active", D1)])).toBeUndefined()
    expect(previousRelease([rel(1, "failed", D1)])).toBeUndefined()
    expect(checkRollbackTarget(rel(4, "failed", D2), history[0])).toMatch(/failed/)
    expect(checkRollbackTarget(rel(3, "superseded", D3), history[0])).toMatch(/same image/)
    expect(checkRollbackTarget(rel(5, "active", D3), history[0])).toMatch(/is the active release/)
    expect(checkRollbackTarget(rel(2, "superseded", D2), history[0])).toBeUndefined()
  })
})
