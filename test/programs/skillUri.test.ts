// A source URI as a user types it: the scheme-less git URLs people paste become the URI they stand for.
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { normalizeUri } from "../../src/programs/skills/install.js"

const ok = (typed: string) => Either.getOrThrowWith(normalizeUri(typed, "/work"), (e) => new Error(e.reason))
const refusal = (typed: string) =>
  Either.match(normalizeUri(typed, "/work"), { onLeft: (e) => e.reason, onRight: () => "" })

describe("normalizeUri", () => {
  it("makes a GitHub https URL gh:owner/repo, with or without .git or a final slash", () => {
    for (const typed of [
      "https://github.com/acme/skills",
      "https://github.com/acme/skills.git",
      "https://github.com/acme/skills/",
      "gh:acme/skills"
    ])
      expect(ok(typed)).toBe("gh:acme/skills")
  })

  it("makes any other git URL git:<url>, and leaves what already has a source scheme as it was", () => {
    expect(ok("https://gitlab.com/acme/skills.git")).toBe("git:https://gitlab.com/acme/skills.git")
    expect(ok("ssh://git@example.com/acme/skills.git")).toBe("git:ssh://git@example.com/acme/skills.git")
    expect(ok("git@github.com:acme/skills.git")).toBe("git:git@github.com:acme/skills.git")
    expect(ok("file:///srv/skills.git")).toBe("git:file:///srv/skills.git")
    expect(ok("git:https://example.com/r.git")).toBe("git:https://example.com/r.git")
    expect(ok("git:./repo")).toBe("git:/work/repo")
    expect(ok("local:/home/me/skills")).toBe("local:/home/me/skills")
  })

  it("refuses a page inside a GitHub repository, naming the repository's URI, and what no scheme fits", () => {
    expect(refusal("https://github.com/acme/skills/tree/main/skills/pdf")).toContain("gh:acme/skills")
    expect(refusal("ftp://example.com/r.git")).toContain("expected gh:owner/repo")
    expect(refusal("skills")).toContain("expected gh:owner/repo")
  })
})
