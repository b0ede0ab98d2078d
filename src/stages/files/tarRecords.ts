/** Reproducible tar records (fixed owner and mtime, the mode 0755 or 0644): headers, whole records and batches of them. */
import { Stream } from "effect"
import { Header, Pax } from "tar"
import { fileMode } from "../../domain/model.js"

// A fixed mtime and owner make the same files give the same bytes on every machine.
const EPOCH = new Date(0)
const BLOCK = 512

/** A header block of ours (fixed owner and mtime), a pax header first when a path or link name does not fit ustar. */
const headerBlocks = (
  fields: { readonly path: string; readonly size: number; readonly mode: number } & (
    | { readonly type: "File" }
    | { readonly type: "SymbolicLink"; readonly linkpath: string }
  )
): Buffer => {
  const header = new Header({ ...fields, uid: 0, gid: 0, mtime: EPOCH, uname: "", gname: "" })
  const block = Buffer.alloc(BLOCK)
  const needPax = header.encode(block, 0)
  if (!needPax) return block
  const { path, size } = fields
  const pax =
    fields.type === "File"
      ? new Pax({ path, size, mtime: EPOCH })
      : new Pax({ path, linkpath: fields.linkpath, mtime: EPOCH })
  return Buffer.concat([pax.encode(), block])
}

// The ustar header of a plain file with an ASCII path of under 100 bytes (nearly every file): the block `tar`'s
// `Header` writes for our fields, written directly from a template (its encoder cost a tenth of a push's CPU).
const SIZE_AT = 124
const MODE_AT = 100
const CHECKSUM_AT = 148
const TEMPLATE = (() => {
  const block = Buffer.alloc(BLOCK)
  new Header({ path: "", size: 0, mode: 0, type: "File", uid: 0, gid: 0, mtime: EPOCH, uname: "", gname: "" }).encode(
    block,
    0
  )
  return block
})()
/** A number as `tar` writes it in a field of `width` bytes: zero-padded octal, then a space and a NUL. */
const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 2, "0")} \0`
const modeField = (executable: boolean) => Buffer.from(octal(fileMode(executable), 8), "latin1")
const PLAIN_MODE = modeField(false)
const EXECUTABLE_MODE = modeField(true)
// Sizes of at most 10 octal digits (8 GiB), written as `octal` writes them; ours are capped far below.
const MAX_OCTAL_SIZE = 0o7777777777

/** Whether `plainHeader` writes this file's header: an ASCII path of under 100 bytes, a size in octal. */
const isPlain = (path: string, size: number) =>
  path.length < 100 && size <= MAX_OCTAL_SIZE && Buffer.byteLength(path) === path.length

/** Writes the one header block of a plain file (see `isPlain`) at `at`. */
const plainHeader = (into: Buffer, at: number, path: string, size: number, executable: boolean) => {
  TEMPLATE.copy(into, at)
  into.write(path, at, "latin1")
  const mode = executable ? EXECUTABLE_MODE : PLAIN_MODE
  mode.copy(into, at + MODE_AT)
  into.write(octal(size, 12), at + SIZE_AT, "latin1")
  // The checksum: every byte of the block, its own field counted as spaces.
  into.fill(0x20, at + CHECKSUM_AT, at + CHECKSUM_AT + 8)
  let sum = 0
  // Indexed (a subarray and its iterator per header cost ten times more); every index is inside the block.
  for (let i = at; i < at + BLOCK; i++) sum += into[i]!
  into.write(octal(sum, 8), at + CHECKSUM_AT, "latin1")
}

/**
 * The tar header block(s) of a regular file. Its mode is 0755 for an executable file, else 0644 (`fileMode`): the
 * only two an archive of ours carries.
 */
export const fileHeader = (path: string, size: number, executable = false): Buffer => {
  if (!isPlain(path, size)) return headerBlocks({ path, size, mode: fileMode(executable), type: "File" })
  const block = Buffer.allocUnsafe(BLOCK)
  plainHeader(block, 0, path, size, executable)
  return block
}

/** The tar header block(s) of a symbolic link: type 2, its target as the link name, mode 0777 as links have, no data. */
export const linkHeader = (path: string, target: string): Buffer =>
  headerBlocks({ path, size: 0, mode: 0o777, type: "SymbolicLink", linkpath: target })

const padLength = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK
const padding = (size: number): Buffer => Buffer.alloc(padLength(size))

/** One whole tar record of a file: header, bytes, padding. */
export const fileRecord = (path: string, bytes: Uint8Array, executable = false): Buffer =>
  Buffer.concat([fileHeader(path, bytes.length, executable), bytes, padding(bytes.length)])

/**
 * The record `fileRecord` makes of `text`'s UTF-8 bytes (a manifest's JSON), with the text encoded straight into
 * it: one buffer, where the bytes first made of the text and then copied into the record were two (a first upload's
 * trailer is 1.3 MB at 10,000 files, its buffers' first touch and the copy a tenth of a second under load).
 */
export const textRecord = (path: string, text: string): Buffer => {
  const size = Buffer.byteLength(text, "utf8")
  const header = isPlain(path, size) ? undefined : fileHeader(path, size)
  const at = header?.length ?? BLOCK
  const record = Buffer.allocUnsafe(at + size + padLength(size))
  if (header === undefined) plainHeader(record, 0, path, size, false)
  else header.copy(record, 0)
  record.write(text, at, "utf8")
  record.fill(0, at + size)
  return record
}

/**
 * The tar records of several files in one buffer, each file's header and padding written and its bytes left
 * for the caller to put in place (`slots[i]`, exactly `files[i].size` long): one allocation for a batch of
 * files, instead of a buffer per file and per record and the copies between them. Plain files' headers are
 * written in place; the others' (a pax header, a link) are made first and copied.
 */
export const recordBatch = (
  files: ReadonlyArray<{
    readonly path: string
    readonly size: number
    readonly executable?: boolean | undefined
    /** A symbolic link's target: its record is its header alone, and its slot empty. */
    readonly target?: string | undefined
  }>,
  /** Where the batch's buffer comes from (a pool: see `bufferPool`); a new one by default. */
  allocate: (size: number) => Buffer = Buffer.allocUnsafe
): { readonly buffer: Buffer; readonly slots: ReadonlyArray<Buffer> } => {
  const headers = files.map((f) =>
    f.target !== undefined
      ? linkHeader(f.path, f.target)
      : isPlain(f.path, f.size)
        ? undefined
        : fileHeader(f.path, f.size, f.executable === true)
  )
  const sizeOf = (f: (typeof files)[number]) => (f.target === undefined ? f.size : 0)
  let total = 0
  files.forEach((f, i) => {
    total += (headers[i]?.length ?? BLOCK) + sizeOf(f) + padLength(sizeOf(f))
  })
  const buffer = allocate(total)
  const slots: Array<Buffer> = new Array(files.length)
  let at = 0
  files.forEach((f, i) => {
    const header = headers[i]
    if (header === undefined) {
      plainHeader(buffer, at, f.path, f.size, f.executable === true)
      at += BLOCK
    } else at += header.copy(buffer, at)
    const size = sizeOf(f)
    slots[i] = buffer.subarray(at, at + size)
    at += size
    const pad = padLength(size)
    buffer.fill(0, at, at + pad)
    at += pad
  })
  return { buffer, slots }
}

/**
 * A slot of `recordBatch` with the byte after it, where that byte is its record's padding (a size that is not a
 * multiple of 512): a reader may write it (to tell a file one byte longer than its slot) without touching another
 * record. Undefined where no padding follows.
 */
export const slotAndPad = (slot: Buffer): Buffer | undefined =>
  padLength(slot.length) === 0 ? undefined : Buffer.from(slot.buffer, slot.byteOffset, slot.length + 1)

/**
 * Buffers of up to `size` bytes used again once their bytes have been consumed: a batch is compressed (or copied
 * into a stored member) as soon as it is made, and a new buffer per batch cost more than its bytes (the kernel
 * maps and zeroes fresh pages on first touch, and the collector runs for the memory outside the heap). Larger
 * requests, and requests while every kept buffer is out, get a new buffer; at most `keep` are kept. `keep` caps the
 * free list, not the buffers out: the pool knows its buffers weakly, so one never given back (its consumer dropped
 * it) is the collector's as soon as nothing else holds it.
 */
export const bufferPool = (size: number, keep = 4) => {
  const free: Array<Buffer> = []
  const ours = new WeakMap<ArrayBufferLike, Buffer>()
  return {
    take: (n: number): Buffer => {
      if (n > size) return Buffer.allocUnsafe(n)
      let whole = free.pop()
      if (whole === undefined) {
        whole = Buffer.allocUnsafeSlow(size)
        ours.set(whole.buffer, whole)
      }
      return whole.subarray(0, n)
    },
    /** Gives back what `take` gave, once nothing reads it any more; anything else is left alone. */
    release: (chunk: Uint8Array): void => {
      const whole = chunk.byteOffset === 0 ? ours.get(chunk.buffer) : undefined
      if (whole === undefined || free.includes(whole)) return
      if (free.length < keep) free.push(whole)
      else ours.delete(chunk.buffer)
    }
  }
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE: Uint8Array = new Uint8Array(BLOCK * 2)

/** A tar stream of records, ended properly. */
export const tarOf = <E, R>(records: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
  Stream.concat(records, Stream.succeed(END_OF_ARCHIVE))
