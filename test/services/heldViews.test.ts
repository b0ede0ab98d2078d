// Holds on a reused buffer are counted; a release that nothing holds is a defect, not a silent no-op.
import { describe, expect, it } from "@effect/vitest"
import { hold, release, reusable } from "../../src/services/heldViews.js"

describe("held views", () => {
  it("counts holds on a reused buffer and lets each go once", () => {
    const buffer = new ArrayBuffer(16)
    const holds = reusable(buffer)
    const a = new Uint8Array(buffer, 0, 8)
    const b = new Uint8Array(buffer, 8, 8)
    hold(a)
    hold(b)
    expect(holds.count).toBe(2)
    release(a)
    expect(holds.count).toBe(1)
    release(b)
    expect(holds.count).toBe(0)
  })

  it("throws on a release with nothing held (a double release would drop another holder's count)", () => {
    const buffer = new ArrayBuffer(8)
    const holds = reusable(buffer)
    const view = new Uint8Array(buffer)
    hold(view)
    release(view)
    expect(() => release(view)).toThrow(/released that nothing holds/)
    expect(holds.count).toBe(0)
  })

  it("ignores holds and releases of a buffer that is never reused", () => {
    const view = new Uint8Array(8)
    hold(view)
    release(view)
    expect(() => release(view)).not.toThrow()
  })
})
