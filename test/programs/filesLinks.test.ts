// Symbolic links through file sync, on the real server over a real database: pushed and pulled as links (to a file
// or a folder), reported and not sent when they leave the tree, a change and a conflict like an edit, and refused
// from a hostile server or upload without anything outside the tree or in the project changing.
import { createHash, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, type Redacted, Stream } from "effect"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { noPaint } from "../../src/cli/color.js"
import { human } from "../../src/cli/filesText.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { makeMembership } from "../../src/domain/membership.js"
import { FileEntry } from "../../src/domain/model.js"
import { ExitCode, exitCodeOf } from "../../src/errors.js"
import type { SyncApiOptions } from "../../src/services/SyncApi.js"
import { walkTree } from "../../src/services/state.js"
import { Transient } from "../../src/services/Transport.js"
import { apply } from "../../src/stages/files/apply.js"
import { listingDigest } from "../../src/stages/files/settledCheck.js"
import { fastRetry, run, runEither, serverForFile } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { type FixtureFile, place, readTree } from "../support/gitFixture.js"
import { record, sha, tarGz } from "../support/hostile.js"
import { query } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"

const server = serverForFile("filelinks")

const tempDir = tempDirs("filelinks")
const services = (root: string) => nodePath.join(root, "services")
const full = (root: string, p: string) => nodePath.join(services(root), p)

/** A project of files and links (`{ link: target }`), as a user makes them. */
const project = (files: Record<string, FixtureFile> = {}) => {
  const root = tempDir("project")
  fs.writeFileSync(nodePath.join(root, "agentsync.yaml"), "services: services\n")
  fs.mkdirSync(services(root))
  for (const [p, what] of Object.entries(files)) place(full(root, p), what)
  return root
}

/** Every entry of the tree, a link as `-> target`, never followed. */
const entriesOf = (root: string) => readTree(services(root))

const sync = (root: string, token: Redacted.Redacted<string>) => fileSync(server.url, root, token)
const direct = (token: Redacted.Redacted<string>): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: server.url },
  token,
  retry: fastRetry
})
const changes = (r: { readonly files: ReadonlyArray<{ path: string; status: string; action?: string }> }) =>
  r.files.map((f) => [f.path, f.status, f.action ?? ""])

/** Rewrites the head revision's stored manifest, as a hostile or broken server would serve it. */
const tamper = async (
  tenant: string,
  entries: ReadonlyArray<FileEntry>,
  row: ReadonlyArray<readonly [string, number, string, number?]>
) => {
  // As a new head revision: the server keeps a revision's tree by its id once read (a revision never changes), so a
  // row rewritten in place would not be served.
  await query(
    server.databaseUrl,
    `WITH made AS (
       INSERT INTO revisions (id, tenant_id, parent, manifest, checksum, files, author, storage)
       SELECT gen_random_uuid()::text, id, head, $2::jsonb, $3, $4, 'tampered', 2 FROM tenants WHERE id = $1
       RETURNING id)
     UPDATE tenants SET head = (SELECT id FROM made) WHERE id = $1`,
    [tenant, JSON.stringify(row.map((r) => r.filter((x) => x !== undefined))), manifestChecksum(entries), row.length]
  )
}

describe("symbolic links through file sync", () => {
  it.live(
    "a link to a file and a link to a folder pushed and pulled into a fresh project are links with the same targets; nothing walks into them",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("link-roundtrip"))
        const one = project({
          "skills/s/SKILL.md": "# S\n",
          "skills/s/AGENTS.md": { link: "SKILL.md" },
          "skills/t/SKILL.md": { link: "../s/SKILL.md" },
          "config/shared": { link: "../skills/s" },
          "config/app.yaml": "x: 1\n",
          // Longer than a tar header's 100-byte link name: carried in a pax header.
          "skills/s/long": { link: `${"./".repeat(60)}SKILL.md` }
        })
        const pushed = yield* sync(one, t.token).push()
        expect(pushed.actions).toEqual({ upload: 6 })
        expect(pushed.files.find((f) => f.path === "config/shared")).toMatchObject({ local_link: true })
        const manifest = yield* Effect.promise(() => run(direct(t.token), (c) => c.manifest()))
        // A link's entry is its target text's hash and length; the folder it names is not listed through it.
        expect(manifest.entries.map((e) => [e.path, e.link === true])).toEqual([
          ["config/app.yaml", false],
          ["config/shared", true],
          ["skills/s/AGENTS.md", true],
          ["skills/s/SKILL.md", false],
          ["skills/s/long", true],
          ["skills/t/SKILL.md", true]
        ])
        expect(manifest.entries.find((e) => e.path === "config/shared")).toMatchObject({
          size: "../skills/s".length,
          sha256: sha("../skills/s")
        })
        const two = project()
        const pulled = yield* sync(two, t.token).pull()
        expect(pulled.actions).toEqual({ write: 6 })
        expect(entriesOf(two)).toEqual(entriesOf(one))
        expect(fs.lstatSync(full(two, "config/shared")).isSymbolicLink()).toBe(true)
        // Read through, the link gives the file it names.
        expect(fs.readFileSync(full(two, "skills/t/SKILL.md"), "utf8")).toBe("# S\n")
        const again = yield* sync(two, t.token).diff()
        expect(again.counts).toEqual({ added: 0, modified: 0, removed: 0, unchanged: 6 })
        // A link retargeted is a change, pushed and pulled as one.
        fs.rmSync(full(two, "skills/s/AGENTS.md"))
        fs.symlinkSync("../t/SKILL.md", full(two, "skills/s/AGENTS.md"))
        expect(changes(yield* sync(two, t.token).push())).toEqual([["skills/s/AGENTS.md", "Modified", "upload"]])
        expect(changes(yield* sync(one, t.token).pull())).toEqual([["skills/s/AGENTS.md", "Modified", "write"]])
        expect(fs.readlinkSync(full(one, "skills/s/AGENTS.md"))).toBe("../t/SKILL.md")
      })
  )

  it.live(
    "a link that is absolute or leaves the tree is reported by path (table and --json) and not sent; a remote file at its path is left alone",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("link-outside"))
        const one = project({
          "config/app.yaml": "x: 1\n",
          "config/abs": { link: "/etc/hostname" },
          "config/out": { link: "../../outside.txt" },
          "config/sneaky": { link: "../config/../../x" }
        })
        const pushed = yield* sync(one, t.token).push()
        expect(pushed.actions).toEqual({ upload: 1 })
        const skipped = pushed.files.filter((f) => f.status === "NotCarried")
        expect(skipped.map((f) => [f.path, f.action, f.link_target])).toEqual([
          ["config/abs", "skip", "/etc/hostname"],
          ["config/out", "skip", "../../outside.txt"],
          ["config/sneaky", "skip", "../config/../../x"]
        ])
        expect(skipped.map((f) => f.note)).toEqual([
          expect.stringMatching(/absolute/),
          expect.stringMatching(/leaves the tree/),
          expect.stringMatching(/'\.\.' after a name/)
        ])
        const table = human(pushed)(noPaint)
        expect(table).toContain("3 symbolic link(s) not carried")
        for (const p of ["config/abs", "config/out", "config/sneaky"])
          expect(table).toMatch(new RegExp(`${p}.*not carried`))
        const manifest = yield* Effect.promise(() => run(direct(t.token), (c) => c.manifest()))
        expect(manifest.entries.map((e) => e.path)).toEqual(["config/app.yaml"])
        // Another client pushes a file at one of those paths: this project's link is neither replaced nor deleted.
        const two = project({ "config/app.yaml": "x: 1\n", "config/out": "a file\n" })
        yield* sync(two, t.token).pull()
        yield* sync(two, t.token).push()
        const pulled = yield* sync(one, t.token).pull({ delete: true })
        expect(pulled.actions).toEqual({})
        expect(fs.readlinkSync(full(one, "config/out"))).toBe("../../outside.txt")
        const pushedAgain = yield* sync(one, t.token).push({ delete: true })
        expect(pushedAgain.actions).toEqual({})
        const kept = yield* Effect.promise(() => run(direct(t.token), (c) => c.manifest()))
        expect(kept.entries.map((e) => e.path)).toEqual(["config/app.yaml", "config/out"])
      })
  )

  it.live("a file made a link on one side and edited on the other is a conflict (exit 3); forced, the link wins", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("link-conflict"))
      const one = project({ "skills/s/SKILL.md": "# S\n", "skills/s/AGENTS.md": "# S\n" })
      yield* sync(one, t.token).push()
      const two = project()
      yield* sync(two, t.token).pull()
      // The same bytes, now through a link: still a change.
      fs.rmSync(full(one, "skills/s/AGENTS.md"))
      fs.symlinkSync("SKILL.md", full(one, "skills/s/AGENTS.md"))
      fs.writeFileSync(full(two, "skills/s/AGENTS.md"), "# edited\n")
      yield* sync(two, t.token).push()
      const refused = yield* sync(one, t.token).pushEither()
      expect(Either.isLeft(refused) && [refused.left._tag, exitCodeOf(refused.left)]).toEqual([
        "Conflict",
        ExitCode.Conflict
      ])
      yield* sync(one, t.token).push({ force: true })
      yield* sync(two, t.token).pull({ force: true })
      expect(entriesOf(two)).toEqual({ "skills/s/AGENTS.md": "-> SKILL.md", "skills/s/SKILL.md": "# S\n" })
      // And back to a file: a change the other side pulls.
      fs.rmSync(full(two, "skills/s/AGENTS.md"))
      fs.writeFileSync(full(two, "skills/s/AGENTS.md"), "# S\n")
      expect(changes(yield* sync(two, t.token).push())).toEqual([["skills/s/AGENTS.md", "Modified", "upload"]])
      yield* sync(one, t.token).pull()
      expect(fs.lstatSync(full(one, "skills/s/AGENTS.md")).isFile()).toBe(true)
    })
  )

  it.live(
    "a link to a folder that becomes a real folder is pulled as a delete plus a create: the link goes to the backup, nothing is written through it",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("link-shape"))
        const one = project({ "config/b/y": "y\n", "config/a": { link: "b" } })
        yield* sync(one, t.token).push()
        const two = project()
        yield* sync(two, t.token).pull()
        fs.rmSync(full(one, "config/a"))
        place(full(one, "config/a/x"), "x\n")
        yield* sync(one, t.token).push()
        const pulled = yield* sync(two, t.token).pull()
        expect(pulled.actions).toEqual({ write: 1, "delete-local": 1 })
        expect(entriesOf(two)).toEqual({ "config/a/x": "x\n", "config/b/y": "y\n" })
        expect(fs.lstatSync(full(two, "config/a")).isDirectory()).toBe(true)
        expect(fs.readlinkSync(nodePath.join(pulled.backup!, "config/a"))).toBe("b")
      })
  )

  it.live(
    "a hostile server's link (absolute, '..', or a link with a file below it) is refused naming the path; nothing outside the tree or in the project changes",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("link-hostile"))
        // Stored as files first (so the blobs exist), then served as links by a tampered manifest.
        const targets = { "config/up": "../..", "config/abs": "/tmp", "config/a": "b", "config/c/x": "x\n" }
        yield* sync(project(targets), t.token).push()
        // Each case pulls into its own project (a kept manifest of the same revision id would answer for it).
        const victim = () => {
          const root = project({ "config/app.yaml": "mine\n" })
          // Outside the tree: the project around it (its own state folder aside).
          const around = () =>
            fs
              .readdirSync(root)
              .filter((n) => n !== ".agentsync")
              .sort()
          const snapshot = () => [entriesOf(root), around()]
          return { root, snapshot, before: snapshot() }
        }
        const link = (path: string) => {
          const target = targets[path as keyof typeof targets]
          return {
            entry: new FileEntry({ path, size: target.length, sha256: sha(target), link: true }),
            row: [path, target.length, sha(target), 2] as const
          }
        }
        const refuses = (path: string, reason: RegExp) =>
          Effect.gen(function* () {
            const l = link(path)
            yield* Effect.promise(() => tamper(t.tenantId, [l.entry], [l.row]))
            const v = victim()
            const r = yield* sync(v.root, t.token).pullEither()
            expect(Either.isLeft(r) && [r.left._tag, r.left.message]).toEqual([
              "TarballUnsafe",
              expect.stringMatching(reason)
            ])
            expect(Either.isLeft(r) && r.left.message).toContain(path)
            expect(v.snapshot()).toEqual(v.before)
          })
        yield* refuses("config/up", /leaves the tree/)
        yield* refuses("config/abs", /absolute/)
        // A link and a file below it, in one tree: refused before anything is downloaded.
        const a = link("config/a")
        const below = new FileEntry({ path: "config/a/x", size: 2, sha256: sha("x\n") })
        yield* Effect.promise(() => tamper(t.tenantId, [a.entry, below], [a.row, ["config/a/x", 2, sha("x\n")]]))
        const v = victim()
        const r = yield* sync(v.root, t.token).pullEither()
        expect(Either.isLeft(r) && [r.left._tag, r.left.message]).toEqual([
          "UnsafeRemote",
          expect.stringMatching(/config\/a.*both as a file and as a folder/)
        ])
        expect(v.snapshot()).toEqual(v.before)
      })
  )

  it.live("the apply stage refuses a pull that would write below a link it makes, before anything is written", () =>
    Effect.gen(function* () {
      const root = project({ "config/b/keep.txt": "kept\n" })
      const archive = tarGz(
        record({ path: "config/a", type: "SymbolicLink", linkpath: "b" }),
        record({ path: "config/a/x" }, Buffer.from("x\n"))
      )
      const result = yield* Effect.either(
        apply({
          projectRoot: root,
          servicesPath: services(root),
          // The body never breaks off here: a Transient would be a defect of the test.
          download: (_missing, consume) =>
            Effect.catchIf(
              consume(Stream.make(new Uint8Array(archive))),
              (e) => e instanceof Transient,
              (e) => Effect.die(e)
            ),
          write: [
            new FileEntry({ path: "config/a", size: 1, sha256: sha("b"), link: true }),
            new FileEntry({ path: "config/a/x", size: 2, sha256: sha("x\n") })
          ],
          delete: []
        })
      )
      expect(Either.isLeft(result) && result.left.message).toMatch(/config\/a is a symbolic link.*config\/a\/x/)
      expect(entriesOf(root)).toEqual({ "config/b/keep.txt": "kept\n" })
    })
  )

  it("a hostile upload: a link leaving the tree is refused, and a link the header lists must arrive as a link record", async () => {
    const t = await server.createTenant("link-upload")
    const upload = (set: ReadonlyArray<FileEntry>, ...records: ReadonlyArray<Buffer>) => {
      const header = new UploadHeader({ base: null, author: "x", set, delete: [], checksum: manifestChecksum(set) })
      const archive = tarGz(record({ path: UPLOAD_HEADER_ENTRY }, Buffer.from(JSON.stringify(header))), ...records)
      return runEither(direct(t.token), (c) => c.upload(() => Stream.make(archive), randomUUID()))
    }
    const climb = "../../../etc/passwd"
    const entry = new FileEntry({ path: "config/l", size: climb.length, sha256: sha(climb), link: true })
    const out = await upload([entry], record({ path: "config/l", type: "SymbolicLink", linkpath: climb }))
    expect(Either.isLeft(out) && [out.left._tag, out.left.message]).toEqual([
      "TarballUnsafe",
      expect.stringMatching(/config\/l.*leaves the tree|leaves the tree.*config\/l/)
    ])
    // Its bytes held already (as a file's content), a link is still not taken without its record.
    const file = new FileEntry({ path: "config/t", size: climb.length, sha256: sha(climb) })
    expect(Either.isRight(await upload([file], record({ path: "config/t" }, Buffer.from(climb))))).toBe(true)
    const head = await run(direct(t.token), (c) => c.manifest())
    const set = [entry]
    const header = new UploadHeader({
      base: head.revision,
      author: "x",
      set,
      delete: [],
      checksum: manifestChecksum([entry, file])
    })
    const archive = tarGz(record({ path: UPLOAD_HEADER_ENTRY }, Buffer.from(JSON.stringify(header))))
    const unsent = await runEither(direct(t.token), (c) => c.upload(() => Stream.make(archive), randomUUID()))
    expect(Either.isLeft(unsent) && unsent.left.message).toMatch(/config\/l was not sent as a link record/)
    expect((await run(direct(t.token), (c) => c.manifest())).entries.map((e) => e.path)).toEqual(["config/t"])
  })

  it("a tree without links keeps its checksum from before; a link changes it and the settled fingerprint", () => {
    const root = project({ "config/app.yaml": "x: 1\n", "skills/s/SKILL.md": "# S\n" })
    const plain = [
      new FileEntry({ path: "config/app.yaml", size: 5, sha256: sha("x: 1\n") }),
      new FileEntry({ path: "skills/s/SKILL.md", size: 4, sha256: sha("# S\n") })
    ]
    // Both as computed before links travelled: one line per file, nothing after its hash or mtime.
    const lines = (es: ReadonlyArray<FileEntry>) => es.map((e) => `${e.path}\0${e.size}\0${e.sha256}\n`).join("")
    expect(manifestChecksum(plain)).toBe(createHash("sha256").update(lines(plain)).digest("hex"))
    const listed = walkTree(services(root), makeMembership(""))
    const fingerprint = listingDigest(listed)
    // A link of the same target bytes as a file's content is not that file, in the checksum or the listing.
    const asLink = new FileEntry({ path: "config/app.yaml", size: 5, sha256: sha("x: 1\n"), link: true })
    expect(manifestChecksum([asLink, plain[1]!])).not.toBe(manifestChecksum(plain))
    fs.symlinkSync("app.yaml", full(root, "config/link.yaml"))
    const at = new Date(1_700_000_000_000)
    fs.lutimesSync(full(root, "config/link.yaml"), at, at)
    const withLink = walkTree(services(root), makeMembership(""))
    expect(withLink.map((f) => [f.path, f.link])).toEqual([
      ["config/app.yaml", undefined],
      ["config/link.yaml", "app.yaml"],
      ["skills/s/SKILL.md", undefined]
    ])
    expect(listingDigest(withLink)).not.toBe(fingerprint)
    // Retargeted to a name of the same length with the old mtime put back: the target itself is fingerprinted.
    fs.rmSync(full(root, "config/link.yaml"))
    fs.symlinkSync("xyz.yaml", full(root, "config/link.yaml"))
    fs.lutimesSync(full(root, "config/link.yaml"), at, at)
    const retargeted = walkTree(services(root), makeMembership(""))
    expect(retargeted.map((f) => [f.size, f.mtimeMs])).toEqual(withLink.map((f) => [f.size, f.mtimeMs]))
    expect(listingDigest(retargeted)).not.toBe(listingDigest(withLink))
  })

  it.live(
    "a link whose target is not UTF-8 is reported by path and never sent: not as a target rewritten with U+FFFD, neither first nor as a retarget",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("link-not-utf8"))
        // "ap\xffp.yaml": a byte no UTF-8 text holds.
        const bytes = Buffer.from([0x61, 0x70, 0xff, 0x70, 0x2e, 0x79, 0x61, 0x6d, 0x6c])
        const one = project({ "config/app.yaml": "x: 1\n", "config/good": { link: "app.yaml" } })
        const notSent = (r: { readonly files: ReadonlyArray<{ path: string; status: string; note?: string }> }) =>
          r.files.filter((f) => f.status === "NotCarried").map((f) => [f.path, f.note])
        // A clean tree pushed: the next run starts from its settled mark (only what changed is looked at).
        expect(notSent(yield* sync(one, t.token).push())).toEqual([])
        // The carried link retargeted to bytes that are not UTF-8, and a new link to them: both reported, the
        // server keeps the target it had and never gets the new one.
        fs.rmSync(full(one, "config/good"))
        fs.symlinkSync(bytes, full(one, "config/good"))
        fs.symlinkSync(bytes, full(one, "config/bad"))
        for (let run = 0; run < 2; run++) {
          const pushed = yield* sync(one, t.token).push()
          expect(notSent(pushed)).toEqual([
            ["config/bad", expect.stringMatching(/not UTF-8/)],
            ["config/good", expect.stringMatching(/not UTF-8/)]
          ])
          expect(pushed.actions).toEqual({})
        }
        const manifest = yield* Effect.promise(() => run(direct(t.token), (c) => c.manifest()))
        expect(manifest.entries.map((e) => e.path)).toEqual(["config/app.yaml", "config/good"])
        // A first push of a tree holding such a link reports it too.
        const three = project({ "config/app.yaml": "x: 1\n" })
        fs.symlinkSync(bytes, full(three, "config/bad"))
        const t3 = yield* Effect.promise(() => server.createTenant("link-not-utf8-first"))
        const first = yield* sync(three, t3.token).push()
        expect(notSent(first)).toEqual([["config/bad", expect.stringMatching(/not UTF-8/)]])
        const firstManifest = yield* Effect.promise(() => run(direct(t3.token), (c) => c.manifest()))
        expect(firstManifest.entries.map((e) => e.path)).toEqual(["config/app.yaml"])
        const two = project()
        yield* sync(two, t.token).pull()
        expect(entriesOf(two)).toEqual({ "config/app.yaml": "x: 1\n", "config/good": "-> app.yaml" })
        // A pull leaves both links as they are, byte for byte.
        yield* sync(one, t.token).pull({ delete: true })
        for (const p of ["config/bad", "config/good"])
          expect(fs.readlinkSync(full(one, p), { encoding: "buffer" }).equals(bytes)).toBe(true)
      })
  )
})
