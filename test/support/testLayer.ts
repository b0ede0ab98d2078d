/** Test support: a partial fake of a port, as a layer; a method the test did not give dies naming the port and the method. */
import { type Context, Effect, Layer } from "effect"

/** What a method the fake does not implement does when it is called: a defect saying which one it was. */
const unimplemented = (port: string, method: string) => () =>
  Effect.die(new Error(`${port}: the test fake does not implement "${method}"`))

/**
 * The service `tag` with only the methods a test needs (`testService(Shell, { run })`); any other method, when
 * called, dies with a message naming it, so a test that reaches code it did not plan for fails loudly.
 */
export const testService = <I, S extends object>(tag: Context.Tag<I, S>, methods: Partial<S>): S =>
  new Proxy({ ...methods } as S, {
    get: (target, property, receiver) =>
      typeof property === "symbol" || property in target
        ? Reflect.get(target, property, receiver)
        : unimplemented(tag.key, property)
  })

/** `testService` as a layer, for `it.layer` or `Effect.provide`. */
export const testLayer =
  <I, S extends object>(tag: Context.Tag<I, S>) =>
  (methods: Partial<S>): Layer.Layer<I> =>
    Layer.succeed(tag, testService(tag, methods))
