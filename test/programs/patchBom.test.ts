// A diff's text of a file that gained or lost a byte order mark: the change is shown, as git shows it.
import { describe, expect, it } from "@effect/vitest"
import { patchOf } from "../../src/programs/patches.js"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("patchOf and a byte order mark", () => {
  it("shows one added or dropped as a changed first line, <U+FEFF>, and keeps it on unchanged lines", () => {
    const added = patchOf("page.md", bytes("# Title\nBody.\n"), bytes("\uFEFF# Title\nBody.\n"))
    expect(added.patch).toContain("-# Title\n+<U+FEFF># Title\n")
    const dropped = patchOf("page.md", bytes("\uFEFF# Title\nBody.\n"), bytes("# Title\nBody.\n"))
    expect(dropped.patch).toContain("-<U+FEFF># Title\n+# Title\n")
    const edited = patchOf("page.md", bytes("\uFEFF# Title\nBody.\n"), bytes("\uFEFF# Title\nMore.\n"))
    expect(edited.patch).toContain(" <U+FEFF># Title\n-Body.\n+More.\n")
  })
})
