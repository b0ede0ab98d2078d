/** Bundle archives, one import for client and server: reproducible tar records (tarRecords) and their reader (tarReader), their compression (compress), the strict reader (readArchive) and zstd's frames (zstdFrames). */
export {
  type Compression,
  compress,
  compressionFor,
  gzip,
  isLoopback,
  LINK_LEVEL,
  LOOPBACK_LEVEL,
  levelFor,
  storedLength,
  storedMember,
  ZSTD_LEVEL
} from "./compress.js"
export { type ArchiveStats, type ArchiveVisitor, checkEntryPath, type EntrySink, readArchive } from "./readArchive.js"
export { type TarBody, type TarHeader, type TarReader, tarReader } from "./tarReader.js"
export {
  bufferPool,
  END_OF_ARCHIVE,
  fileHeader,
  fileRecord,
  linkHeader,
  recordBatch,
  slotAndPad,
  tarOf,
  textRecord
} from "./tarRecords.js"
export { rawZstdFrame, zstdFrameCutter } from "./zstdFrames.js"
