/** The one row a statement answers whatever the data (an aggregate, an `INSERT … RETURNING`, a row its transaction holds). */
import { Array as Arr, Effect, Option } from "effect"

/** The first row; none is a fault of the statement, not of the data, so it is a defect naming `what`. */
export const oneRow = <A>(rows: ReadonlyArray<A>, what: string): Effect.Effect<A> =>
  Option.match(Arr.head(rows), { onNone: () => Effect.dieMessage(`${what} returned no row`), onSome: Effect.succeed })
