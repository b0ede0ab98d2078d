/** Views held past the pull they came in: a buffer that is read into again (a download's slab) waits while any is held. */

/** How many views of one reused buffer its holders keep. */
export interface Holds {
  count: number
}

const holds = new WeakMap<ArrayBufferLike, Holds>()

/**
 * Makes `buffer` one that is read into again once its pieces are taken and no view of it is held: a reader that keeps
 * a view of it past the next pull of the body it came in must `hold` it, and `release` it once done.
 */
export const reusable = (buffer: ArrayBufferLike): Holds => {
  const h: Holds = { count: 0 }
  holds.set(buffer, h)
  return h
}

/** Keeps `view`'s buffer from being read into again until `release`d (nothing for a buffer that is never reused). */
export const hold = (view: Uint8Array): void => {
  const h = holds.get(view.buffer)
  if (h !== undefined) h.count++
}

/**
 * Lets go of a view kept by `hold`. Releasing a reused buffer that nothing holds is a defect (a double release): it
 * throws, rather than drop a count another holder still needs.
 */
export const release = (view: Uint8Array): void => {
  const h = holds.get(view.buffer)
  if (h === undefined) return
  if (h.count === 0) throw new Error("heldViews.release: a view released that nothing holds (released twice?)")
  h.count--
}
