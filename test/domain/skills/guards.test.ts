import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import {
  checkGitUrl,
  checkName,
  checkRef,
  checkUnitName,
  defaultSourceName,
  parseSourceUri
} from "../../../src/domain/skills/guards.js"
import { Lock, parseLock, parseManifest, renderLock, renderManifest } from "../../../src/domain/skills/model.js"

const ok = <A, E>(e: Either.Either<A, E>) => Either.isRight(e)

describe("guards", () => {
  it("refuses names, refs and URLs that could become options, escape, or break a line", () => {
    for (const bad of ["-x", "a/b", "..", "a..b", "a\nb", "", "a\\b", ".hidden"])
      expect(ok(checkName("tool", bad))).toBe(false)
    for (const good of ["claude", "codex", "my-tool_2"]) expect(ok(checkName("tool", good))).toBe(true)
    for (const bad of [
      "--upload-pack=x",
      "-b",
      "a..b",
      "main\n",
      "a b",
      "a:b",
      "x.lock",
      "a//b",
      "/main",
      "main/",
      "@{1}",
      "a~1",
      "HEAD^"
    ]) {
      expect(ok(checkRef(bad))).toBe(false)
    }
    for (const good of ["main", "feature/x", "v1.2.3", "0123abcd"]) expect(ok(checkRef(good))).toBe(true)
    for (const bad of [
      "-u",
      "ext::sh -c touch% /tmp/pwned",
      "fd::3",
      "ftp://x/y",
      "relative/path",
      "file:///a/../b",
      "https://h/x\n",
      "--config=x"
    ]) {
      expect(ok(checkGitUrl(bad))).toBe(false)
    }
    for (const good of [
      "https://github.com/a/b.git",
      "file:///srv/repo.git",
      "/srv/repo.git",
      "git@github.com:a/b.git",
      "ssh://git@h/x"
    ]) {
      expect(ok(checkGitUrl(good))).toBe(true)
    }
    for (const bad of ["skills/../x", "skills//x", "-skills/x", "skills/x\n", "/skills/x"])
      expect(ok(checkUnitName(bad))).toBe(false)
    expect(ok(checkUnitName("agents/ops/deployer"))).toBe(true)
  })

  it("resolves gh:, git: and local: URIs", () => {
    expect(parseSourceUri("gh:acme/skills")).toEqual(
      Either.right({ _tag: "Git", url: "https://github.com/acme/skills.git" })
    )
    expect(parseSourceUri("gh:acme/skills.git")).toEqual(
      Either.right({ _tag: "Git", url: "https://github.com/acme/skills.git" })
    )
    expect(parseSourceUri("git:file:///srv/r.git")).toEqual(Either.right({ _tag: "Git", url: "file:///srv/r.git" }))
    expect(parseSourceUri("local:/home/me/skills/")).toEqual(Either.right({ _tag: "Local", path: "/home/me/skills" }))
    for (const bad of ["gh:-x/y", "gh:a/../b", "gh:a", "git:-uhack", "local:relative", "svn:x", "git:ext::sh"])
      expect(ok(parseSourceUri(bad))).toBe(false)
    expect(defaultSourceName("git:/srv/team-skills.git")).toBe("team-skills")
    expect(defaultSourceName("gh:acme/skills")).toBe("skills")
  })
})

describe("state files", () => {
  it("round-trips the manifest and the lock", () => {
    const manifest = Either.getOrThrow(
      parseManifest(
        "m.yaml",
        "sources:\n  - name: team\n    uri: gh:acme/skills\nunits:\n  - source: team\n    tools: [claude]\n"
      )
    )
    expect(manifest.sources[0]).toMatchObject({
      name: "team",
      ref: "main",
      enabled: true,
      read_only: false,
      target_layout: []
    })
    expect(manifest.units[0]).toMatchObject({ name: "**", tools: ["claude"] })
    expect(Either.getOrThrow(parseManifest("m.yaml", renderManifest(manifest)))).toEqual(manifest)
    const lock = {
      version: 1 as const,
      sources: {
        team: {
          commit: "abc",
          units: { "skills/x": { claude: { commit: "abc", files: { "SKILL.md": "a".repeat(64) } } } }
        }
      }
    }
    expect(Either.getOrThrow(parseLock("l.yaml", renderLock(lock)))).toEqual(lock)
  })

  // Small locks with awkward keys (quotes, colons, unicode): the shapes the fast path and the schema must agree on.
  const key = fc.string({ maxLength: 6 })
  const sha = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"))
  const deployment = fc.record(
    { commit: fc.hexaString({ minLength: 7, maxLength: 40 }), files: fc.dictionary(key, sha, { maxKeys: 3 }) },
    { requiredKeys: ["files"] }
  )
  const lockArb = fc.record({
    version: fc.constant(1 as const),
    sources: fc.dictionary(
      key,
      fc.record(
        {
          commit: fc.hexaString({ minLength: 7, maxLength: 40 }),
          units: fc.dictionary(key, fc.dictionary(key, deployment, { maxKeys: 3 }), { maxKeys: 4 })
        },
        { requiredKeys: ["units"] }
      ),
      { maxKeys: 3 }
    )
  })

  it("the lock's fast path and the schema agree: every lock round-trips, every broken one is refused with its line", () => {
    fc.assert(
      fc.property(lockArb, (lock) => {
        expect(Schema.is(Lock)(lock)).toBe(true)
        expect(Either.getOrThrow(parseLock("l.yaml", renderLock(lock)))).toEqual(lock)
      }),
      { numRuns: 1000 }
    )
    fc.assert(
      fc.property(lockArb, fc.constantFrom("XYZ", "g".repeat(64), ""), (lock, bad) => {
        const text = renderLock(lock)
        const hit = /"[0-9a-f]{64}"/.exec(text)
        if (hit === null) return
        const broken = text.replace(hit[0], JSON.stringify(bad))
        const r = parseLock("l.yaml", broken)
        expect(Either.isLeft(r)).toBe(true)
        if (Either.isLeft(r)) expect(r.left.line).toBe(broken.slice(0, hit.index).split("\n").length)
      }),
      { numRuns: 500 }
    )
  })

  it("names the file and line of a corrupt lock", () => {
    const bad = parseLock(
      "/x/lock.yaml",
      "version: 1\nsources:\n  team:\n    units:\n      skills/x:\n        claude:\n          files:\n            SKILL.md: not-a-hash\n"
    )
    expect(Either.isLeft(bad)).toBe(true)
    if (Either.isLeft(bad)) {
      expect(bad.left.file).toBe("/x/lock.yaml")
      expect(bad.left.line).toBe(8)
    }
    const broken = parseLock("/x/lock.yaml", "sources: [\n")
    expect(Either.isLeft(broken) && broken.left.message).toMatch(/^\/x\/lock\.yaml:\d+: invalid YAML/)
  })

  it("refuses a hostile ref in the manifest", () => {
    const bad = parseManifest(
      "m.yaml",
      "sources:\n  - name: team\n    uri: gh:acme/skills\n    ref: --upload-pack=evil\n"
    )
    expect(Either.isLeft(bad) && bad.left.message).toMatch(/m\.yaml:4: sources\.0\.ref: .*refused/)
  })
})
