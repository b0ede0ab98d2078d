// Executable bits through file sync, on the real server over a real database: pushed, stored, pulled, changed by a
// chmod alone, in conflict, read from state kept before modes travelled, and refused or masked in hostile archives.
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { gunzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, type Redacted, Stream } from "effect"
import { Header } from "tar"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { FORMATS } from "../../src/domain/caps.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { makeMembership } from "../../src/domain/membership.js"
import { FileEntry } from "../../src/domain/model.js"
import { ExitCode, exitCodeOf } from "../../src/errors.js"
import type { SyncApiOptions } from "../../src/services/SyncApi.js"
import { walkTree } from "../../src/services/state.js"
import { listingDigest } from "../../src/stages/files/settledCheck.js"
import { fastRetry, run, runEither, serverForFile, startServer } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { record, sha, tarGz } from "../support/hostile.js"
import { query } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const server = serverForFile("filemode")

const tempDir = tempDirs("filemode")
const SCRIPT = "skills/s/scripts/run.sh"
const sample = {
  "skills/s/SKILL.md": "# S\n",
  [SCRIPT]: "#!/bin/sh\necho ran\n",
  "config/app.yaml": "x: 1\n"
}

const services = (root: string) => nodePath.join(root, "services")
const full = (root: string, p: string) => nodePath.join(services(root), p)
const project = (files: Record<string, string> = {}, executable: ReadonlyArray<string> = []) => {
  const root = tempDir("project")
  for (const [p, text] of Object.entries(files)) {
    fs.mkdirSync(nodePath.dirname(full(root, p)), { recursive: true })
    fs.writeFileSync(full(root, p), text)
    fs.chmodSync(full(root, p), executable.includes(p) ? 0o755 : 0o644)
  }
  return root
}
/** What the umask leaves of a mode: a pulled file gets the mode git's checkout would give it. */
const under = (mode: number) => {
  const probe = nodePath.join(tempDir("umask"), "probe")
  fs.writeFileSync(probe, "", { mode })
  return fs.statSync(probe).mode & 0o7777
}
/** Every file of the tree with its permission bits. */
const modes = (root: string) =>
  Object.fromEntries(
    Object.keys(treeFiles(services(root))).map((p) => [p, (fs.statSync(full(root, p)).mode & 0o7777).toString(8)])
  )
const backdate = (root: string) => {
  const past = new Date(Date.now() - 60_000)
  for (const p of Object.keys(treeFiles(services(root)))) fs.utimesSync(full(root, p), past, past)
}

const sync = (root: string, token: Redacted.Redacted<string>) => fileSync(server.url, root, token)
const direct = (token: Redacted.Redacted<string>): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: server.url },
  token,
  retry: fastRetry
})
const changes = (r: {
  readonly files: ReadonlyArray<{ path: string; status: string; action?: string; mode?: string }>
}) => r.files.map((f) => [f.path, f.status, f.action ?? "", f.mode ?? ""])

describe("executable bits through file sync", () => {
  it.live(
    "a pushed executable arrives executable in a fresh folder, the rest 0644; the manifest and download carry it",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("mode-roundtrip"))
        const one = project(sample, [SCRIPT])
        const pushed = yield* sync(one, t.token).push()
        expect(pushed.files.find((f) => f.path === SCRIPT)).toMatchObject({ local_executable: true, mode: "+x" })
        const manifest = yield* Effect.promise(() => run(direct(t.token), (c) => c.manifest()))
        expect(manifest.entries.filter((e) => e.executable === true).map((e) => e.path)).toEqual([SCRIPT])
        // The whole-tree download: 0755 in the header of the executable, 0644 for the rest.
        const archive = yield* Effect.promise(() =>
          run(direct(t.token), (c) =>
            c.download(
              manifest.revision!,
              () => undefined,
              (body) => Effect.map(Stream.runCollect(body), (ch) => Buffer.concat(Chunk.toReadonlyArray(ch)))
            )
          )
        )
        const tar = gunzipSync(archive)
        const headers: Record<string, number> = {}
        for (let at = 0; at + 512 <= tar.length; ) {
          const h = new Header(tar.subarray(at, at + 512))
          if (h.path === undefined || h.path === "") break
          headers[h.path] = h.mode!
          at += 512 + Math.ceil((h.size ?? 0) / 512) * 512
        }
        expect(headers).toEqual({ "config/app.yaml": 0o644, "skills/s/SKILL.md": 0o644, [SCRIPT]: 0o755 })
        const two = project()
        const pulled = yield* sync(two, t.token).pull()
        expect(pulled.actions).toEqual({ write: 3 })
        expect(treeFiles(services(two))).toEqual(treeFiles(services(one)))
        expect(modes(two)).toEqual({
          "config/app.yaml": under(0o644).toString(8),
          "skills/s/SKILL.md": under(0o644).toString(8),
          [SCRIPT]: under(0o755).toString(8)
        })
        const again = yield* sync(two, t.token).diff()
        expect(again.counts).toEqual({ added: 0, modified: 0, removed: 0, unchanged: 3 })
      })
  )

  it.live(
    "a chmod alone is a change, also on a settled project: pushed without bytes, pulled by another client, counted by the log",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("mode-chmod"))
        const one = project(sample, [SCRIPT])
        yield* sync(one, t.token).push()
        backdate(one)
        // Settles: the next run is answered by the settled mark.
        yield* sync(one, t.token).push()
        expect((yield* sync(one, t.token).push()).files_hashed).toBe(0)
        expect(fs.existsSync(nodePath.join(one, ".agentsync", "files-settled.json"))).toBe(true)
        const two = project()
        yield* sync(two, t.token).pull()
        // chmod leaves the mtime as it was: only the execute bit tells.
        const mtime = fs.statSync(full(one, SCRIPT)).mtimeMs
        fs.chmodSync(full(one, SCRIPT), 0o644)
        expect(fs.statSync(full(one, SCRIPT)).mtimeMs).toBe(mtime)
        const diff = yield* sync(one, t.token).diff()
        expect(changes(diff)).toEqual([[SCRIPT, "Modified", "", "-x"]])
        const pushed = yield* sync(one, t.token).push()
        expect(changes(pushed)).toEqual([[SCRIPT, "Modified", "upload", "-x"]])
        expect(pushed.files_sent).toBe(0)
        const log = yield* Effect.promise(() => run(direct(t.token), (c) => c.revisions()))
        expect([log[0]!.added, log[0]!.changed, log[0]!.deleted]).toEqual([0, 1, 0])
        const pulled = yield* sync(two, t.token).pull()
        expect(changes(pulled)).toEqual([[SCRIPT, "Modified", "write", "-x"]])
        expect(modes(two)[SCRIPT]).toBe(under(0o644).toString(8))
        // And back: +x on the second client reaches the first.
        fs.chmodSync(full(two, SCRIPT), 0o755)
        expect(changes(yield* sync(two, t.token).push())).toEqual([[SCRIPT, "Modified", "upload", "+x"]])
        yield* sync(one, t.token).pull()
        expect(modes(one)[SCRIPT]).toBe(under(0o755).toString(8))
        expect((yield* sync(one, t.token).diff()).counts.modified).toBe(0)
      })
  )

  it.live(
    "diff -p shows a mode change as git does: old mode and new mode before the hunk, alone when only the bit moved",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("mode-patch"))
        const one = project(sample, ["config/app.yaml"])
        yield* sync(one, t.token).push()
        const patches = () =>
          Effect.gen(function* () {
            const s = sync(one, t.token)
            return yield* s.patches(yield* s.diff())
          })
        fs.chmodSync(full(one, SCRIPT), 0o755)
        expect(yield* patches()).toEqual([
          {
            path: SCRIPT,
            binary: false,
            old_mode: "100644",
            new_mode: "100755",
            patch: `diff --git a/${SCRIPT} b/${SCRIPT}\nold mode 100644\nnew mode 100755\n`
          }
        ])
        fs.chmodSync(full(one, "config/app.yaml"), 0o644)
        fs.writeFileSync(full(one, "config/app.yaml"), "x: 2\n")
        fs.chmodSync(full(one, SCRIPT), 0o644)
        expect(yield* patches()).toEqual([
          {
            path: "config/app.yaml",
            binary: false,
            old_mode: "100755",
            new_mode: "100644",
            patch: [
              "diff --git a/config/app.yaml b/config/app.yaml",
              "old mode 100755",
              "new mode 100644",
              "--- a/config/app.yaml",
              "+++ b/config/app.yaml",
              "@@ -1 +1 @@",
              "-x: 1",
              "+x: 2",
              ""
            ].join("\n")
          }
        ])
      })
  )

  it.live(
    "a push of executable bits or links to a server that predates them is refused before sending, naming each file",
    () =>
      Effect.acquireUseRelease(
        // A real server answering as one built before executable bits and links: its manifest answers say so.
        Effect.promise(() =>
          startServer(server.databaseUrl, { archives: { formats: FORMATS, compress: "auto", entries: [] } })
        ),
        (old) =>
          Effect.gen(function* () {
            const t = yield* Effect.promise(() => old.createTenant("mode-old-server"))
            const root = project(sample, [SCRIPT])
            fs.symlinkSync("app.yaml", full(root, "config/current.yaml"))
            const before = { files: treeFiles(services(root)), modes: modes(root) }
            const olds = fileSync(old.url, root, t.token)
            for (const dryRun of [true, false]) {
              const refused = yield* olds.pushEither({ dryRun })
              expect(Either.isLeft(refused)).toBe(true)
              const error = Either.getLeft(refused).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
              expect(error._tag).toBe("ServerLacks")
              expect(exitCodeOf(error)).toBe(ExitCode.Failure)
              expect(error.message).toBe(
                `the server does not carry symbolic links or executable bits: upgrade it (${old.url}/api/v1/sync); nothing was sent\n  config/current.yaml (symbolic link)\n  ${SCRIPT} (executable)`
              )
            }
            const revisions = yield* Effect.promise(() =>
              run({ endpoint: { mode: "direct", origin: old.url }, token: t.token, retry: fastRetry }, (c) =>
                c.revisions()
              )
            )
            expect(revisions).toEqual([])
            expect({ files: treeFiles(services(root)), modes: modes(root) }).toEqual(before)
            // Plain files only: the same server takes the push.
            fs.chmodSync(full(root, SCRIPT), 0o644)
            fs.rmSync(full(root, "config/current.yaml"))
            expect((yield* olds.push()).files_sent).toBe(3)
          }),
        (old) => Effect.promise(() => old.stop())
      )
  )

  it.live(
    "a chmod on one side and an edit on the other is a conflict (exit 3); the same chmod on both sides agrees",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("mode-conflict"))
        const one = project(sample)
        yield* sync(one, t.token).push()
        const two = project()
        yield* sync(two, t.token).pull()
        fs.chmodSync(full(one, SCRIPT), 0o755)
        fs.chmodSync(full(two, SCRIPT), 0o755)
        yield* sync(one, t.token).push()
        // Both made the same change: nothing to pull, nothing in conflict.
        const agreed = yield* sync(two, t.token).pull()
        expect([agreed.conflicts, agreed.actions]).toEqual([[], {}])
        // Now one drops the bit while the other edits the bytes.
        fs.chmodSync(full(one, SCRIPT), 0o644)
        yield* sync(one, t.token).push()
        fs.writeFileSync(full(two, SCRIPT), "#!/bin/sh\necho edited\n")
        const refused = yield* sync(two, t.token).pullEither()
        expect(Either.isLeft(refused) && refused.left._tag).toBe("Conflict")
        if (Either.isLeft(refused)) expect(exitCodeOf(refused.left)).toBe(ExitCode.Conflict)
        expect(Either.isLeft(yield* sync(two, t.token).pushEither())).toBe(true)
        expect(fs.readFileSync(full(two, SCRIPT), "utf8")).toBe("#!/bin/sh\necho edited\n")
        // --force takes the remote's version: its bytes and its mode.
        yield* sync(two, t.token).pull({ force: true })
        expect(treeFiles(services(two))).toEqual(treeFiles(services(one)))
        expect(modes(two)[SCRIPT]).toBe(under(0o644).toString(8))
      })
  )

  it.live("a project synced before modes travelled sees no change, but for the executable bits the remote lost", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("mode-old"))
      // A revision as an older client made it: entries without the executable field.
      const set = Object.entries(sample).map(
        ([path, text]) => new FileEntry({ path, size: Buffer.byteLength(text), sha256: sha(text) })
      )
      const header = new UploadHeader({ base: null, author: "old", set, delete: [], checksum: manifestChecksum(set) })
      const archive = tarGz(
        record({ path: UPLOAD_HEADER_ENTRY }, Buffer.from(JSON.stringify(header))),
        ...Object.entries(sample).map(([path, text]) => record({ path }, Buffer.from(text)))
      )
      const made = yield* Effect.promise(() =>
        run(direct(t.token), (c) => c.upload(() => Stream.make(archive), randomUUID()))
      )
      const [row] = yield* Effect.promise(() =>
        query<{ manifest: Array<Array<unknown>> }>(
          server.databaseUrl,
          "SELECT coalesce(manifest, manifest_text::jsonb) AS manifest FROM revisions WHERE id = $1",
          [made.revision]
        )
      )
      expect(row!.manifest.every((e) => e.length === 3)).toBe(true)
      // The state an older client kept: the base as bare hashes, the kept head manifest without the field.
      const keep = (root: string) => {
        fs.mkdirSync(nodePath.join(root, ".agentsync"))
        const files = Object.fromEntries(set.map((e) => [e.path, e.sha256]))
        fs.writeFileSync(
          nodePath.join(root, ".agentsync", "files-base.json"),
          JSON.stringify({ version: 1, tenant: t.tenantId, revision: made.revision, files })
        )
        fs.writeFileSync(
          nodePath.join(root, ".agentsync", "remote-manifest.json"),
          JSON.stringify({
            version: 1,
            url: `${server.url}/api/v1/sync`,
            manifest: { tenant: t.tenantId, revision: made.revision, entries: set, checksum: header.checksum }
          })
        )
      }
      // A client whose files were pulled then (all 0644): nothing at all changed.
      const puller = project(sample)
      keep(puller)
      const diff = yield* sync(puller, t.token).diff()
      expect([diff.counts, diff.remote_manifest]).toEqual([
        { added: 0, modified: 0, removed: 0, unchanged: 3 },
        "cached"
      ])
      expect((yield* sync(puller, t.token).push()).actions).toEqual({})
      expect((yield* sync(puller, t.token).pull()).actions).toEqual({})
      // The client that pushed them, its script still 0755: only that script, and only its mode.
      const pusher = project(sample, [SCRIPT])
      keep(pusher)
      const seen = yield* sync(pusher, t.token).diff()
      expect([seen.counts.unchanged, changes(seen)]).toEqual([2, [[SCRIPT, "Modified", "", "+x"]]])
      // A pull leaves it for a push (changed here only); the push carries the bit and no bytes.
      const pulled = yield* sync(pusher, t.token).pull()
      expect(changes(pulled)).toEqual([[SCRIPT, "Modified", "skip", "-x"]])
      const pushed = yield* sync(pusher, t.token).push()
      expect([changes(pushed), pushed.files_sent]).toEqual([[[SCRIPT, "Modified", "upload", "+x"]], 0])
      expect(modes(puller)[SCRIPT]).toBe("644")
      yield* sync(puller, t.token).pull()
      expect(modes(puller)[SCRIPT]).toBe(under(0o755).toString(8))
    })
  )

  it("the settled fingerprint changes with the execute bit alone", () => {
    const root = project(sample)
    const listed = walkTree(services(root), makeMembership(""))
    const before = listingDigest(listed)
    expect(listingDigest([...listed])).toBe(before)
    // A chmod leaves the mtime alone.
    fs.chmodSync(full(root, SCRIPT), 0o755)
    const chmodded = walkTree(services(root), makeMembership(""))
    expect(chmodded.map((f) => [f.path, f.size, f.mtimeMs])).toEqual(listed.map((f) => [f.path, f.size, f.mtimeMs]))
    expect(listingDigest(chmodded)).not.toBe(before)
  })

  it("a hostile upload: a setuid entry is refused, a 0777 one is stored as executable (0755), a mode the header does not declare is refused", async () => {
    const t = await server.createTenant("mode-hostile")
    const body = Buffer.from("#!/bin/sh\n")
    const upload = (declared: boolean, mode: number) => {
      const set = [new FileEntry({ path: SCRIPT, size: body.length, sha256: sha(body), executable: declared })]
      const header = new UploadHeader({ base: null, author: "x", set, delete: [], checksum: manifestChecksum(set) })
      const archive = tarGz(
        record({ path: UPLOAD_HEADER_ENTRY }, Buffer.from(JSON.stringify(header))),
        record({ path: SCRIPT, mode }, body)
      )
      return runEither(direct(t.token), (c) => c.upload(() => Stream.make(archive), randomUUID()))
    }
    const setuid = await upload(true, 0o4755)
    expect(Either.isLeft(setuid) && [setuid.left._tag, setuid.left.message]).toEqual([
      "TarballUnsafe",
      expect.stringMatching(/setuid/)
    ])
    const undeclared = await upload(false, 0o755)
    expect(Either.isLeft(undeclared) && undeclared.left.message).toMatch(/mode does not match/)
    expect(await runEither(direct(t.token), (c) => c.revisions())).toEqual(Either.right([]))
    const masked = await upload(true, 0o777)
    expect(Either.isRight(masked)).toBe(true)
    const manifest = await run(direct(t.token), (c) => c.manifest())
    expect(manifest.entries).toEqual([{ path: SCRIPT, size: body.length, sha256: sha(body), executable: true }])
    const root = project()
    await Effect.runPromise(sync(root, t.token).pull())
    expect(modes(root)).toEqual({ [SCRIPT]: under(0o755).toString(8) })
  })
})
