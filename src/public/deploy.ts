/** `agentsync/deploy`: build → image → push → release → verify, the release API client and the stages one by one. */
export * as Deploy from "../domain/deploy/index.js"
export { type DeployOptions, type DeployReport, DeployService, type RollbackOptions } from "../programs/deploy.js"
export * as DeployApiClient from "../services/DeployApi.js"
export { DeployApi, type DeployApiShape } from "../services/DeployApi.js"
export * as DeployStages from "../stages/deploy.js"
