/** Pages whose front matter follows blank lines, stored by earlier versions as body as a whole, are compared once more. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

// Earlier versions read such a page (Hugo reads its front matter) as body as a whole: its row has format 'none'
// and the front matter in its body. The row forgets its file hash, so the next run fetches it and reads its page
// again (`asReadNow` in domain/formats/content.ts) instead of trusting the file it was synced with. A row matched
// here that still reads as body (a template tag, `---js`) is only compared once more. The trigger leaves
// version_hash as it is: only file_sha256 changes.
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`
UPDATE contents SET file_sha256 = NULL
  WHERE format = 'none' AND file_sha256 IS NOT NULL AND body ~ '^[\\t\\n\\r ]+[-+{]';
`)
})
