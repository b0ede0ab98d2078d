/** The command tree as plain data, read once from the @effect/cli definitions: what argv checks, help and completions share. */
import type * as Command from "@effect/cli/Command"

export interface OptionSpec {
  readonly name: string
  /** One-letter or other names, without dashes. */
  readonly aliases: ReadonlyArray<string>
  /** The value's placeholder (`DIR`, `N`); undefined for a flag that takes no value. */
  readonly value: string | undefined
  readonly choices: ReadonlyArray<string>
  readonly default: string | undefined
  readonly description: string
}

export interface ArgSpec {
  readonly name: string
  readonly optional: boolean
  readonly description: string
}

export interface CommandSpec {
  readonly name: string
  /** From the root: `["agentsync", "files", "push"]`. */
  readonly path: ReadonlyArray<string>
  readonly description: string
  readonly options: ReadonlyArray<OptionSpec>
  readonly args: ReadonlyArray<ArgSpec>
  readonly subcommands: ReadonlyArray<CommandSpec>
}

/** A node of @effect/cli's descriptor trees (commands, options, args, primitives, help docs), read by its fields. */
interface Node {
  readonly _tag: string
  readonly [field: string]: unknown
}

const isNode = (u: unknown): u is Node => typeof u === "object" && u !== null && "_tag" in u
const node = (u: unknown): Node => (isNode(u) ? u : { _tag: "Empty" })
const str = (u: unknown): string => (typeof u === "string" ? u : "")

/** The plain text of a HelpDoc or Span. */
export const textOf = (u: unknown): string => {
  const n = node(u)
  if (typeof n.value === "string") return n.value
  if (isNode(n.value)) return textOf(n.value)
  if (n.left !== undefined) {
    const sep = n._tag === "Sequence" && isNode(n.left) && "value" in n.left && !isSpanTag(n.left._tag) ? "\n" : ""
    return `${textOf(n.left)}${sep}${textOf(n.right)}`
  }
  return ""
}
const isSpanTag = (tag: string) => ["Text", "Code", "Error", "Weak", "Strong", "URI", "Highlight"].includes(tag)

/** The placeholder a value type gets when none was named. */
const placeholderOf = (name: string, primitive: Node): string => {
  switch (primitive._tag) {
    case "Integer":
    case "Float":
      return "N"
    case "Path":
      return "FILE"
    case "Choice":
      return name.toUpperCase()
    default:
      return name === "services" || name === "data" || name === "dir" ? "DIR" : name.toUpperCase()
  }
}

const choicesOf = (primitive: Node): ReadonlyArray<string> =>
  primitive._tag === "Choice" && Array.isArray(primitive.alternatives)
    ? primitive.alternatives.map((a: unknown) => (Array.isArray(a) ? str(a[0]) : ""))
    : []

const shown = (fallback: unknown): string | undefined =>
  typeof fallback === "string" || typeof fallback === "number" ? String(fallback) : undefined

const optionsOf = (u: unknown, fallback?: unknown): Array<OptionSpec> => {
  const n = node(u)
  switch (n._tag) {
    case "Single": {
      const primitive = node(n.primitiveType)
      const name = str(n.name)
      return [
        {
          name,
          aliases: Array.isArray(n.aliases) ? n.aliases.map(str) : [],
          value: primitive._tag === "Bool" ? undefined : placeholderOf(name, primitive),
          choices: choicesOf(primitive),
          default: shown(fallback),
          description: textOf(n.description)
        }
      ]
    }
    case "WithDefault":
      return optionsOf(n.options, n.fallback)
    case "Map":
    case "WithFallback":
      return optionsOf(n.options, fallback)
    case "Both":
    case "OrElse":
      return [...optionsOf(n.left, fallback), ...optionsOf(n.right, fallback)]
    case "Variadic":
    case "KeyValueMap":
      return optionsOf(n.argumentOption, fallback)
    default:
      return []
  }
}

const argsOf = (u: unknown, optional = false): Array<ArgSpec> => {
  const n = node(u)
  switch (n._tag) {
    case "Single":
      return [{ name: str(n.name).replace(/^<|>$/g, ""), optional, description: textOf(n.description) }]
    case "WithDefault":
      return argsOf(n.args, true)
    case "Map":
    case "WithFallbackConfig":
      return argsOf(n.args, optional)
    case "Variadic":
      return argsOf(n.args, optional || n.min === 0)
    case "Both":
      return [...argsOf(n.left, optional), ...argsOf(n.right, optional)]
    default:
      return []
  }
}

const fromDescriptor = (u: unknown, parent: ReadonlyArray<string>): CommandSpec => {
  const n = node(u)
  switch (n._tag) {
    case "Map":
      return fromDescriptor(n.command, parent)
    case "Subcommands": {
      const self = fromDescriptor(n.parent, parent)
      const children = Array.isArray(n.children) ? n.children : []
      return { ...self, subcommands: children.map((c: unknown) => fromDescriptor(c, self.path)) }
    }
    default: {
      const name = str(n.name)
      return {
        name,
        path: [...parent, name],
        description: textOf(n.description),
        options: optionsOf(n.options),
        args: argsOf(n.args),
        subcommands: []
      }
    }
  }
}

/** The tree of a command with its subcommands. */
export const specOf = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>): CommandSpec =>
  fromDescriptor(command.descriptor, [])

/** The node at `path` below `tree` (its first element is the root's name), or undefined. */
export const find = (tree: CommandSpec, path: ReadonlyArray<string>): CommandSpec | undefined =>
  path.slice(1).reduce<CommandSpec | undefined>((at, name) => at?.subcommands.find((c) => c.name === name), tree)
