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

/** Records and the end-of-archive blocks, with no frame: what a server sends a pull on loopback. */
export const plainTar = (...records: ReadonlyArray<Buffer>): Buffer => Buffer.concat([...records, Buffer.alloc(1024)])

export const tarGz = (...records: ReadonlyArray<Buffer>): Buffer => gzipSync(plainTar(...records))

const content = Buffer.from("name: evil\n")

type Case = { readonly name: string; readonly archive: Buffer }

/** The hostile cases whose tar is well formed, as plain tars: the gzip cases are these gzipped. */
const tars = (): ReadonlyArray<Case> => [
  { name: "dot-dot path", archive: plainTar(record({ path: "agents/../../escape.txt" }, content)) },
  { name: "absolute path", archive: plainTar(record({ path: "/tmp/agentsync-absolute.txt" }, content)) },
  {
    name: "symlink",
    archive: plainTar(record({ path: "agents/a/config.yaml", type: "SymbolicLink", linkpath: "/etc/passwd" }))
  },
  {
    name: "hard link",
    archive: plainTar(record({ path: "agents/a/config.yaml", type: "Link", linkpath: "/etc/passwd" }))
  },
  {
    name: "device",
    archive: plainTar(record({ path: "agents/a/config.yaml", type: "CharacterDevice", devmaj: 1, devmin: 3 }))
  },
  { name: "hash mismatch", archive: plainTar(record({ path: "agents/a/config.yaml" }, Buffer.from("name: eviL\n"))) },
  { name: "setuid mode", archive: plainTar(record({ path: "agents/a/config.yaml", mode: 0o6755 }, content)) },
  {
    name: "executable bit the manifest does not promise",
    archive: plainTar(record({ path: "agents/a/config.yaml", mode: 0o755 }, content))
  }
]

/** Every hostile archive of the issue, each claiming to carry `agents/a/config.yaml`. */
let cached: ReadonlyArray<Case> | undefined

export const hostileCases = (): ReadonlyArray<Case> => (cached ??= build())

const build = (): ReadonlyArray<Case> => {
  const good = tarGz(record({ path: "agents/a/config.yaml" }, content))
  const corrupt = Buffer.from(good)
  for (let i = 20; i < corrupt.length - 10; i += 7) corrupt[i] = corrupt[i]! ^ 0xff
  return [
    ...tars().map(({ name, archive }) => ({ name, archive: gzipSync(archive) })),
    {
      name: "huge decompression ratio",
      archive: tarGz(record({ path: "agents/a/config.yaml" }, Buffer.alloc(32 * 1024 * 1024)))
    },
    { name: "truncated gzip", archive: good.subarray(0, Math.floor(good.length / 2)) },
    { name: "corrupt gzip", archive: corrupt },
    { name: "nested gzip", archive: gzipSync(good) }
  ]
}

let plainCached: ReadonlyArray<Case> | undefined

/**
 * The hostile archives as plain tars (a pull's download on loopback, read with no frame's checksum or length in
 * front of the tar reader), and what only a plain tar can get wrong: for a reader that takes them (`apply`).
 */
export const plainHostileCases = (): ReadonlyArray<Case> => (plainCached ??= buildPlain())

const buildPlain = (): ReadonlyArray<Case> => {
  const good = plainTar(record({ path: "agents/a/config.yaml" }, content))
  return [
    ...tars(),
    { name: "trailing garbage", archive: Buffer.concat([good, Buffer.from("garbage")]) },
    { name: "zeros past a record after its end", archive: Buffer.concat([good, Buffer.alloc(64 * 1024)]) },
    { name: "a zero block then a file", archive: Buffer.concat([Buffer.alloc(512), good]) },
    {
      name: "an over-size pax header",
      archive: plainTar(record({ path: "PaxHeader/x", type: "ExtendedHeader", size: 2 * 1024 * 1024 }))
    },
    { name: "truncated plain tar", archive: good.subarray(0, 700) }
  ]
}

/** Cases whose archive is well formed: only a reader that knows the manifest (or the upload header) refuses them. */
export const WELL_FORMED = new Set(["hash mismatch", "executable bit the manifest does not promise"])

/** The manifest entry the hostile archives claim to satisfy. */
export const claimedEntry = { path: "agents/a/config.yaml", size: content.length, sha256: sha(content) }
