/** Test support: hand-made tarballs, hostile and honest, built block by block with tar's Header. */
import { createHash } from "node:crypto"
import { gzipSync } from "node:zlib"
import { Header, type HeaderData } from "tar"

export const sha = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex")

/** One tar record with any header fields (type, linkpath, path…), raw. */
export const record = (h: HeaderData, body: Uint8Array = Buffer.alloc(0)): Buffer => {
  const block = Buffer.alloc(512)
  new Header({
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: new Date(0),
    type: "File",
    ...h,
    size: h.size ?? body.length
  }).encode(block, 0)
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512)
  return Buffer.concat([block, body, pad])
}

export const tarGz = (...records: ReadonlyArray<Buffer>): Buffer =>
  gzipSync(Buffer.concat([...records, Buffer.alloc(1024)]))

const content = Buffer.from("name: evil\n")

/** Every hostile archive of the issue, each claiming to carry `agents/a/config.yaml`. */
let cached: ReadonlyArray<{ readonly name: string; readonly archive: Buffer }> | undefined

export const hostileCases = (): ReadonlyArray<{ readonly name: string; readonly archive: Buffer }> =>
  (cached ??= build())

const build = (): ReadonlyArray<{ readonly name: string; readonly archive: Buffer }> => {
  const good = tarGz(record({ path: "agents/a/config.yaml" }, content))
  const corrupt = Buffer.from(good)
  for (let i = 20; i < corrupt.length - 10; i += 7) corrupt[i] = corrupt[i]! ^ 0xff
  return [
    { name: "dot-dot path", archive: tarGz(record({ path: "agents/../../escape.txt" }, content)) },
    { name: "absolute path", archive: tarGz(record({ path: "/tmp/agentsync-absolute.txt" }, content)) },
    {
      name: "symlink",
      archive: tarGz(record({ path: "agents/a/config.yaml", type: "SymbolicLink", linkpath: "/etc/passwd" }))
    },
    {
      name: "hard link",
      archive: tarGz(record({ path: "agents/a/config.yaml", type: "Link", linkpath: "/etc/passwd" }))
    },
    {
      name: "device",
      archive: tarGz(record({ path: "agents/a/config.yaml", type: "CharacterDevice", devmaj: 1, devmin: 3 }))
    },
    {
      name: "huge decompression ratio",
      archive: tarGz(record({ path: "agents/a/config.yaml" }, Buffer.alloc(32 * 1024 * 1024)))
    },
    { name: "truncated gzip", archive: good.subarray(0, Math.floor(good.length / 2)) },
    { name: "corrupt gzip", archive: corrupt },
    { name: "hash mismatch", archive: tarGz(record({ path: "agents/a/config.yaml" }, Buffer.from("name: eviL\n"))) },
    { name: "setuid mode", archive: tarGz(record({ path: "agents/a/config.yaml", mode: 0o6755 }, content)) },
    {
      name: "executable bit the manifest does not promise",
      archive: tarGz(record({ path: "agents/a/config.yaml", mode: 0o755 }, content))
    },
    { name: "nested gzip", archive: gzipSync(good) }
  ]
}

/** Cases whose archive is well formed: only a reader that knows the manifest (or the upload header) refuses them. */
export const WELL_FORMED = new Set(["hash mismatch", "executable bit the manifest does not promise"])

/** The manifest entry the hostile archives claim to satisfy. */
export const claimedEntry = { path: "agents/a/config.yaml", size: content.length, sha256: sha(content) }
