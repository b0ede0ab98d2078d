/** Reading a value the pure layer's own construction guarantees: a miss is a fault of the program, not of its input. */

/** `value`, or a thrown defect naming `what` was lost (a key taken from a map, then looked up in it again…). */
export const held = <A>(value: A | undefined, what: string): A => {
  if (value === undefined) throw new Error(`lost track of ${what}`)
  return value
}
