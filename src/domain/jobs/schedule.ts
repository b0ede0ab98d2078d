/** Job schedules: a cron expression in a time zone, or a fixed interval, and the instants they fire at (daylight-saving time included). */
import { Cron, DateTime, Either } from "effect"

/**
 * A cron expression read in a time zone. `wall` is the same expression in UTC: it enumerates wall-clock times,
 * which `instantsOf` then places in the zone, so the zone's transitions are decided here and nowhere else.
 */
export interface CronSchedule {
  readonly _tag: "Cron"
  readonly expression: string
  readonly tz: string
  readonly zone: DateTime.TimeZone.Named
  readonly wall: Cron.Cron
  /** The hour field is `*`: the job keeps its pace in real time through a repeated hour. */
  readonly everyHour: boolean
}

/** A fixed interval, firing at whole multiples of it since 1970-01-01T00:00Z, so every replica agrees on the instants. */
export interface EverySchedule {
  readonly _tag: "Every"
  readonly text: string
  readonly millis: number
}

export type JobSchedule = CronSchedule | EverySchedule

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION = /^(?:\s*\d+\s*[smhd])+\s*$/

/** `30s`, `15m`, `1h30m`, `1d` → milliseconds; anything else (or zero) → undefined. */
export const parseDuration = (text: string): number | undefined => {
  if (!DURATION.test(text)) return undefined
  let total = 0
  for (const m of text.matchAll(/(\d+)\s*([smhd])/g)) total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
  return total > 0 && Number.isSafeInteger(total) ? total : undefined
}

/** Milliseconds as the shortest duration text (`90m` → `1h30m`). */
export const formatDuration = (millis: number): string => {
  const parts: Array<string> = []
  let rest = millis
  for (const [unit, size] of [
    ["d", UNIT_MS.d],
    ["h", UNIT_MS.h],
    ["m", UNIT_MS.m],
    ["s", UNIT_MS.s]
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}ms`)
  return parts.join("")
}

/** A time zone by its IANA name (`Europe/Berlin`, `UTC`), or why not. */
export const parseZone = (tz: string): Either.Either<DateTime.TimeZone.Named, string> =>
  Either.fromOption(
    DateTime.zoneMakeNamed(tz),
    () => `unknown time zone ${JSON.stringify(tz)} (expected an IANA name such as UTC or Europe/Berlin)`
  )

/** A cron expression (5 fields, or 6 with seconds first) in a time zone; an expression that can never fire is refused. */
export const parseCron = (expression: string, tz = "UTC"): Either.Either<CronSchedule, string> =>
  Either.gen(function* () {
    const zone = yield* parseZone(tz)
    const wall = yield* Either.mapLeft(Cron.parse(expression, "UTC"), (e) =>
      e.input === undefined || e.input === expression
        ? `invalid cron expression ${JSON.stringify(expression)}: ${e.message}`
        : `invalid cron expression ${JSON.stringify(expression)}: ${e.message} (in ${JSON.stringify(e.input)})`
    )
    const hours = wall.hours.size
    const schedule: CronSchedule = { _tag: "Cron", expression, tz, zone, wall, everyHour: hours === 0 || hours === 24 }
    // Effect's Cron gives up after a bounded search: an expression such as `0 0 30 2 *` has no date at all.
    yield* Either.try({
      try: () => nextWall(schedule, 0),
      catch: () => `cron expression ${JSON.stringify(expression)} never fires`
    })
    return schedule
  })

/** An interval schedule from its text (`15m`). */
export const parseEvery = (text: string): Either.Either<EverySchedule, string> => {
  const millis = parseDuration(text)
  return millis === undefined
    ? Either.left(`invalid interval ${JSON.stringify(text)} (expected a duration such as 30s, 15m, 1h or 1d)`)
    : Either.right({ _tag: "Every", text, millis })
}

const nextWall = (s: CronSchedule, wall: number): number => Cron.next(s.wall, new Date(wall)).getTime()

const offsetAt = (s: CronSchedule, instant: number): number =>
  DateTime.zonedOffset(DateTime.unsafeMakeZoned(instant, { timeZone: s.zone }))

const wallOf = (s: CronSchedule, instant: number): number => instant + offsetAt(s, instant)

const resolve = (s: CronSchedule, wall: number, disambiguation: "earlier" | "later"): number =>
  DateTime.toEpochMillis(DateTime.unsafeMakeZoned(wall, { timeZone: s.zone, adjustForTimeZone: true, disambiguation }))

/**
 * The instants a wall-clock time stands for in the zone: one as a rule; in a spring gap, the time moved forward by
 * the gap (02:30 that never happens runs at 03:30); in an autumn overlap, the first of the two, and the second too
 * when the job runs every hour (an hourly job keeps its pace, a job pinned to 02:30 runs once).
 */
export const instantsOf = (s: CronSchedule, wall: number): ReadonlyArray<number> => {
  const earlier = resolve(s, wall, "earlier")
  const later = resolve(s, wall, "later")
  if (earlier === later) return [earlier]
  if (wallOf(s, later) !== wall) return [later] // a gap: neither resolution shows this wall time
  return s.everyHour ? [earlier, later] : [earlier]
}

/**
 * Half a day and two hours: the instant of a wall time lies within this of it. A zone's offset is taken to change
 * at most once in that span (true of every zone in the database), so the offsets at its two ends are all there are.
 */
const NEAR = 14 * 3_600_000

const offsetsNear = (s: CronSchedule, t: number): readonly [number, number] => {
  const a = offsetAt(s, t - NEAR)
  const b = offsetAt(s, t + NEAR)
  return a < b ? [a, b] : [b, a]
}

/** The first fire strictly after `after` (epoch milliseconds). */
export const nextFire = (s: JobSchedule, after: number): number => {
  if (s._tag === "Every") return (Math.floor(after / s.millis) + 1) * s.millis
  // Instants follow wall times in order except around a transition (the second pass of a repeated hour, a time
  // moved out of a gap): start from the earliest wall time that can stand for an instant after `after`, and stop
  // at the first wall time that cannot stand for one before the best found.
  const [low, high] = offsetsNear(s, after)
  if (low === high) {
    // No transition within NEAR of `after`: wall time is the instant shifted by one offset.
    const t = nextWall(s, after + low) - low
    if (t <= after + NEAR) return t
  }
  let wall = after + low - 1_000
  let best = Number.POSITIVE_INFINITY
  for (;;) {
    wall = nextWall(s, wall)
    if (wall - offsetsNear(s, wall)[1] >= best) return best
    for (const t of instantsOf(s, wall)) if (t > after && t < best) best = t
  }
}

/** The latest fire at or before `upTo` and strictly after `after`, if any. */
export const latestFire = (s: JobSchedule, upTo: number, after = Number.NEGATIVE_INFINITY): number | undefined => {
  if (s._tag === "Every") {
    const t = Math.floor(upTo / s.millis) * s.millis
    return t > after ? t : undefined
  }
  // Look back over a window that doubles until it holds a fire, then walk forward through it.
  for (let span = 60_000; ; span *= 2) {
    const from = Math.max(upTo - span, after)
    let latest = nextFire(s, from)
    if (latest <= upTo) {
      for (let t = nextFire(s, latest); t <= upTo; t = nextFire(s, t)) latest = t
      return latest
    }
    if (from === after || span > 20 * 366 * 86_400_000) return undefined
  }
}

/** The schedule as written: `cron 30 2 * * * (Europe/Berlin)` or `every 15m`. */
export const describeSchedule = (s: JobSchedule): string =>
  s._tag === "Every" ? `every ${s.text}` : `cron ${s.expression}`

/** An instant as ISO 8601 with the offset in force in the schedule's zone (`Z` in UTC and for intervals). */
export const formatInstant = (s: JobSchedule, instant: number): string =>
  s._tag === "Every" || s.tz === "UTC"
    ? new Date(instant).toISOString().replace(".000Z", "Z")
    : DateTime.formatIsoOffset(DateTime.unsafeMakeZoned(instant, { timeZone: s.zone })).replace(".000", "")
