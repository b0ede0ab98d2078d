/** Access rules: access-control/config.yaml. */
import { Either, Schema } from "effect"
import type { InvalidInput } from "../../errors.js"
import { renderYaml } from "../frontMatter/render.js"
import { problem } from "../frontMatter/split.js"
import { accessRuleKey } from "../hash.js"
import { AccessRule } from "../model.js"
import { decodeYaml, lineAt, type Parsed, parseYaml, type TextFile } from "./yaml.js"

export const ACCESS_RULES_PATH = "access-control/config.yaml"

const AccessRulesFile = Schema.Struct({ rules: Schema.Array(AccessRule) })

export const parseAccessRules = (file: TextFile): Parsed<ReadonlyArray<AccessRule>> =>
  Either.flatMap(parseYaml(file), (y) =>
    Either.flatMap(decodeYaml(AccessRulesFile, file, y, y.doc.toJS() ?? { rules: [] }), ({ rules }) => {
      const seen = new Map<string, number>()
      const errors: Array<InvalidInput> = []
      rules.forEach((r, i) => {
        const key = accessRuleKey(r)
        const earlier = seen.get(key)
        if (earlier !== undefined) {
          errors.push(
            problem(
              file.path,
              `duplicate rule for ${r.entity_type} ${JSON.stringify(r.entity_id)} (${r.access}); first declared as rules.${earlier}`,
              lineAt(y, ["rules", i]),
              `rules.${i}`
            )
          )
        } else seen.set(key, i)
      })
      return errors.length > 0 ? Either.left(errors) : Either.right(rules)
    })
  )

export const renderAccessRules = (rules: ReadonlyArray<AccessRule>): string =>
  renderYaml({
    rules: rules.map((r) => ({
      entity_type: r.entity_type,
      entity_id: r.entity_id,
      access: r.access,
      roles: r.roles,
      ...(r.justification === undefined ? {} : { justification: r.justification })
    }))
  })
