/** The operations of a local-sync plan as data: database and disk operations, and the steps shown to a user. */
import type { AttachmentFile } from "../localSides.js"
import {
  type AccessRule,
  type Agent,
  type Content,
  type ContentSource,
  type DiffStatus,
  type ItemMode,
  type LocalSyncDirection,
  type LocalSyncResult,
  type Skill,
  SyncKind
} from "../model.js"

export const ALL_KINDS: ReadonlyArray<SyncKind> = SyncKind.literals

/** A role rule with its place in the file. */
export interface PlacedRule {
  readonly rule: AccessRule
  readonly position: number
}

/** A content item to store, with the SHA-256 of the file it is (or is written as). */
export interface ContentWrite {
  readonly item: Content
  readonly fileSha: string
}

/** A database operation of a plan. */
export type DbOp =
  | { readonly _tag: "UpsertAgents"; readonly items: ReadonlyArray<Agent> }
  | { readonly _tag: "DeleteAgents"; readonly ids: ReadonlyArray<string> }
  | { readonly _tag: "UpsertSkills"; readonly items: ReadonlyArray<Skill> }
  | { readonly _tag: "DeleteSkills"; readonly ids: ReadonlyArray<string> }
  | { readonly _tag: "UpsertContents"; readonly items: ReadonlyArray<ContentWrite> }
  | {
      readonly _tag: "DeleteContents"
      readonly keys: ReadonlyArray<{ readonly source: string; readonly slug: string }>
    }
  /** After a sync to disk: rows now match these files; only where the row still has `expectedHash`. */
  | { readonly _tag: "RecordContents"; readonly items: ReadonlyArray<ContentWrite & { readonly expectedHash: string }> }
  | { readonly _tag: "UpsertSources"; readonly sources: ReadonlyArray<ContentSource> }
  | { readonly _tag: "UpsertRules"; readonly rules: ReadonlyArray<PlacedRule> }
  | { readonly _tag: "DeleteRules"; readonly rules: ReadonlyArray<AccessRule> }
  | { readonly _tag: "UpsertFiles"; readonly files: ReadonlyArray<AttachmentFile> }
  /** Items whose file changed its mode alone: the mode column, nothing else of the row (its hashes stay). */
  | {
      readonly _tag: "SetModes"
      readonly kind: "agents" | "skills" | "content"
      /** The item's key: an id, or `source/slug`. */
      readonly modes: ReadonlyArray<{ readonly key: string; readonly mode: ItemMode }>
    }
  | { readonly _tag: "DeleteFiles"; readonly paths: ReadonlyArray<string> }

/** A disk operation of a plan; paths are relative to services/. */
export type DiskOp =
  /** A text file; an item's own file carries the item's mode (created 0755 or 0644, less the umask; else 0644). */
  | { readonly _tag: "WriteText"; readonly path: string; readonly text: string; readonly mode?: ItemMode }
  /** A file stored by digest: its bytes are fetched when the plan is applied. */
  | { readonly _tag: "WriteBlob"; readonly path: string; readonly sha: string; readonly mode: number }
  | { readonly _tag: "Remove"; readonly path: string }

/** One line of the plan as shown to a user. */
export interface PlanStep {
  readonly kind: SyncKind
  readonly action: "upsert" | "delete" | "write" | "remove"
  /** The item (`id`, `source/slug`, `entity_type:entity_id:access`), `source:<name>` or `file:<path>`. */
  readonly key: string
  /** The item's status in the direction of the sync (Added: only on the side synced from). */
  readonly status: DiffStatus
  readonly paths: ReadonlyArray<string>
  /** Both present when the kept mode changes (git's `100644`, `100755`): the written side's, then the new one. */
  readonly old_mode?: string
  readonly new_mode?: string
}

export interface KindPlan {
  readonly kind: SyncKind
  readonly result: LocalSyncResult
  readonly steps: ReadonlyArray<PlanStep>
  readonly db: ReadonlyArray<DbOp>
  readonly disk: ReadonlyArray<DiskOp>
  /** Bookkeeping beside the file writes: which file each row now matches. Not a change. */
  readonly after: ReadonlyArray<DbOp>
  /** Pages a row was rendered to that do not read back as that row: left unrecorded, so rendered again each run. */
  readonly unrecorded: ReadonlyArray<string>
}

export interface PlanOptions {
  readonly direction: LocalSyncDirection
  readonly dryRun: boolean
  readonly deleteOrphans: boolean
}
