// Schedules: the fires of cron expressions in time zones (daylight-saving gaps and overlaps) and of intervals.
import { describe, expect, it } from "@effect/vitest"
import { Cron, Either, FastCheck } from "effect"
import {
  type CronSchedule,
  formatDuration,
  formatInstant,
  type JobSchedule,
  latestFire,
  nextFire,
  parseCron,
  parseDuration,
  parseEvery
} from "../../../src/domain/jobs/schedule.js"

const cron = (expression: string, tz = "UTC"): CronSchedule => Either.getOrThrow(parseCron(expression, tz))

/** The next `n` fires after `from`, as ISO with the zone's offset. */
const fires = (s: JobSchedule, from: string, n: number): Array<string> => {
  const out: Array<string> = []
  let t = Date.parse(from)
  for (let i = 0; i < n; i++) {
    t = nextFire(s, t)
    out.push(formatInstant(s, t))
  }
  return out
}

describe("cron in a time zone", () => {
  it("fires at the wall-clock times of its zone", () => {
    expect(fires(cron("30 9 * * 1-5", "America/New_York"), "2024-06-07T00:00:00Z", 3)).toEqual([
      "2024-06-07T09:30:00-04:00",
      "2024-06-10T09:30:00-04:00",
      "2024-06-11T09:30:00-04:00"
    ])
  })

  it("Europe/Berlin, spring gap: 02:30 that never happens runs once, at 03:30; an every-30-minutes job keeps its pace", () => {
    expect(fires(cron("30 2 * * *", "Europe/Berlin"), "2024-03-30T12:00:00Z", 2)).toEqual([
      "2024-03-31T03:30:00+02:00",
      "2024-04-01T02:30:00+02:00"
    ])
    expect(fires(cron("*/30 * * * *", "Europe/Berlin"), "2024-03-31T00:10:00Z", 4)).toEqual([
      "2024-03-31T01:30:00+01:00",
      "2024-03-31T03:00:00+02:00",
      "2024-03-31T03:30:00+02:00",
      "2024-03-31T04:00:00+02:00"
    ])
  })

  it("Europe/Berlin, autumn overlap: 02:30 runs once; an hourly job runs in both 02:00s", () => {
    expect(fires(cron("30 2 * * *", "Europe/Berlin"), "2024-10-26T12:00:00Z", 2)).toEqual([
      "2024-10-27T02:30:00+02:00",
      "2024-10-28T02:30:00+01:00"
    ])
    expect(fires(cron("0 * * * *", "Europe/Berlin"), "2024-10-26T23:30:00Z", 4)).toEqual([
      "2024-10-27T02:00:00+02:00",
      "2024-10-27T02:00:00+01:00",
      "2024-10-27T03:00:00+01:00",
      "2024-10-27T04:00:00+01:00"
    ])
  })

  it("America/New_York, spring gap and autumn overlap", () => {
    expect(fires(cron("30 2 * * *", "America/New_York"), "2024-03-09T12:00:00Z", 2)).toEqual([
      "2024-03-10T03:30:00-04:00",
      "2024-03-11T02:30:00-04:00"
    ])
    expect(fires(cron("30 1 * * *", "America/New_York"), "2024-11-02T12:00:00Z", 2)).toEqual([
      "2024-11-03T01:30:00-04:00",
      "2024-11-04T01:30:00-05:00"
    ])
    expect(fires(cron("*/20 * * * *", "America/New_York"), "2024-11-03T05:50:00Z", 5)).toEqual([
      "2024-11-03T01:00:00-05:00",
      "2024-11-03T01:20:00-05:00",
      "2024-11-03T01:40:00-05:00",
      "2024-11-03T02:00:00-05:00",
      "2024-11-03T02:20:00-05:00"
    ])
  })

  it("a fire in the second pass of a repeated hour comes after the first pass of later wall times", () => {
    // From 02:50 CEST (the first pass), the next hourly fire is 02:00 CET, which is 10 minutes later in real time.
    const s = cron("0 * * * *", "Europe/Berlin")
    expect(formatInstant(s, nextFire(s, Date.parse("2024-10-27T00:50:00Z")))).toBe("2024-10-27T02:00:00+01:00")
  })

  it("a half-hour daylight-saving zone (Australia/Lord_Howe)", () => {
    expect(fires(cron("10,20,35 * * * *", "Australia/Lord_Howe"), "2024-10-05T15:00:00Z", 5)).toEqual([
      "2024-10-06T01:35:00+10:30",
      "2024-10-06T02:35:00+11:00",
      "2024-10-06T02:40:00+11:00",
      "2024-10-06T02:50:00+11:00",
      "2024-10-06T03:10:00+11:00"
    ])
  })

  it("refuses what cannot be scheduled, saying why", () => {
    expect(parseCron("0 0 30 2 *")).toEqual(Either.left('cron expression "0 0 30 2 *" never fires'))
    expect(parseCron("61 * * * *")).toEqual(
      Either.left('invalid cron expression "61 * * * *": Expected a value between 0 and 59 (in "61")')
    )
    expect(parseCron("* * *")).toEqual(
      Either.left('invalid cron expression "* * *": Invalid number of segments in cron expression')
    )
    expect(parseCron("* * * * *", "Mars/Olympus")).toEqual(
      Either.left('unknown time zone "Mars/Olympus" (expected an IANA name such as UTC or Europe/Berlin)')
    )
  })

  it.prop(
    "in UTC, the fires are those of Effect's Cron",
    [
      FastCheck.integer({ min: 0, max: 59 }),
      FastCheck.integer({ min: 0, max: 23 }),
      FastCheck.integer({ min: 0, max: 4e12 })
    ],
    ([m, h, t]) => {
      const s = cron(`${m} ${h} * * *`)
      expect(nextFire(s, t)).toBe(Cron.next(s.wall, new Date(t)).getTime())
    }
  )

  const zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
  const exprs = ["*/15 * * * *", "30 2 * * *", "0 * * * *", "5,35 1-3 * * *", "0 0 * * 0", "15 3 1 * *"]

  it.prop(
    "fires strictly increase, and latestFire agrees with nextFire",
    [
      FastCheck.constantFrom(...zones),
      FastCheck.constantFrom(...exprs),
      FastCheck.integer({ min: 1.6e12, max: 1.9e12 })
    ],
    ([tz, expr, t]) => {
      const s = cron(expr, tz)
      const a = nextFire(s, t)
      expect(a).toBeGreaterThan(t)
      expect(nextFire(s, a)).toBeGreaterThan(a)
      const latest = latestFire(s, t)!
      expect(latest).toBeLessThanOrEqual(t)
      expect(nextFire(s, latest)).toBeGreaterThan(t)
    },
    { fastCheck: { numRuns: 200 } }
  )
})

describe("intervals", () => {
  it("every 15m fires at whole quarter hours since the epoch, whoever computes it", () => {
    const s = Either.getOrThrow(parseEvery("15m"))
    expect(fires(s, "2024-01-01T10:07:12Z", 3)).toEqual([
      "2024-01-01T10:15:00Z",
      "2024-01-01T10:30:00Z",
      "2024-01-01T10:45:00Z"
    ])
    expect(formatInstant(s, latestFire(s, Date.parse("2024-01-01T10:07:12Z"))!)).toBe("2024-01-01T10:00:00Z")
    expect(latestFire(s, Date.parse("2024-01-01T10:07:12Z"), Date.parse("2024-01-01T10:00:00Z"))).toBeUndefined()
  })

  it("durations read and print back", () => {
    expect(parseDuration("15m")).toBe(900_000)
    expect(parseDuration("1h30m")).toBe(5_400_000)
    expect(parseDuration("1 d")).toBe(86_400_000)
    for (const bad of ["", "15", "0s", "15 minutes", "-1m", "1.5h"]) expect(parseDuration(bad)).toBeUndefined()
  })

  it.prop(
    "formatDuration then parseDuration is the identity on whole seconds",
    [FastCheck.integer({ min: 1, max: 10_000_000 })],
    ([secs]) => {
      expect(parseDuration(formatDuration(secs * 1000))).toBe(secs * 1000)
    }
  )
})
