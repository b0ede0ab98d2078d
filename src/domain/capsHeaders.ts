/** The names of the headers in which the two ends say what they read and keep: no Effect, so the settled start path reads them too. */

/** The archive formats an end reads (see `domain/caps.ts`). */
export const ARCHIVE_FORMATS_HEADER = "x-agentsync-archive"

/** The kinds of entries a server keeps (see `domain/caps.ts`). */
export const ENTRY_KINDS_HEADER = "x-agentsync-entries"

/** The upload forms a server reads beyond the header form (`trailer`: see `UPLOAD_LEAD_ENTRY` in api/files.ts). */
export const UPLOAD_FORMS_HEADER = "x-agentsync-upload"
