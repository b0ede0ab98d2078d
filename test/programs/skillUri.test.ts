// A source URI as a user types it: the scheme-less git URLs people paste become the URI they stand for.
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { normalizeUri } from "../../src/programs/skills/install.js"

const CWD = "/home/me/project"
const ok = (typed: string) => Either.getOrThrowWith(normalizeUri(typed, CWD), (e) => new Error(e.reason))
const refusal = (typed: string) =>
  Either.match(normalizeUri(typed, CWD), { onLeft: (e) => e.reason, onRight: (uri) => `accepted as ${uri}` })

describe("normalizeUri", () => {
  it("makes a GitHub URL gh:owner/repo however it was pasted: .git, a final slash, case, www, http, ?tab=, #readme", () => {
    for (const typed of [
      "https://github.com/acme/skills",
      "https://github.com/acme/skills.git",
      "https://github.com/acme/skills/",
      "HTTPS://GitHub.com/acme/skills",
      "https://www.github.com/acme/skills",
      "http://github.com/acme/skills",
      "https://github.com/acme/skills?tab=readme-ov-file",
      "https://github.com/acme/skills#readme",
      "gh:acme/skills"
    ])
      expect(ok(typed), typed).toBe("gh:acme/skills")
  })

  it("makes any other git URL git:<url>, and leaves what already has a source scheme as it was", () => {
    expect(ok("https://gitlab.com/acme/skills.git")).toBe("git:https://gitlab.com/acme/skills.git")
    expect(ok("ssh://git@example.com:2222/acme/skills.git")).toBe("git:ssh://git@example.com:2222/acme/skills.git")
    // SSH chosen by the user stays SSH (gh: clones over https).
    expect(ok("git@github.com:acme/skills.git")).toBe("git:git@github.com:acme/skills.git")
    expect(ok("git@example.com:/srv/skills.git")).toBe("git:git@example.com:/srv/skills.git")
    expect(ok("file:///srv/skills.git")).toBe("git:file:///srv/skills.git")
    expect(ok("git:https://example.com/r.git")).toBe("git:https://example.com/r.git")
    expect(ok("git:./repo")).toBe("git:/home/me/project/repo")
    expect(ok("local:/home/me/skills")).toBe("local:/home/me/skills")
  })

  it("refuses a page inside a GitHub repository naming the repository's URI, a URL holding a token, and what no scheme fits", () => {
    expect(refusal("https://github.com/acme/skills/tree/main/skills/pdf")).toContain("(gh:acme/skills)")
    for (const typed of [
      "https://me:ghp_SECRET1@github.com/acme/skills",
      "git:https://me:SECRET2@gitlab.com/a/b.git"
    ]) {
      expect(refusal(typed)).toContain("password or token")
      expect(refusal(typed)).not.toMatch(/SECRET/)
    }
    expect(refusal("ftp://example.com/r.git")).toContain("expected gh:owner/repo")
    expect(refusal("skills")).toContain("expected gh:owner/repo")
  })
})
