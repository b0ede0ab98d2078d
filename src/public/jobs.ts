/** `agentsync/jobs`: the scheduler (any Effect on a cron or an interval), its run stores, and agentsync's own jobs. */
export { JobRun, type RunStatus, type Trigger } from "../domain/jobs/runs.js"
export * as JobSchedule from "../domain/jobs/schedule.js"
export {
  type CatchUp,
  type Job,
  JobEntries,
  JobEntry,
  JobOptions,
  type JobTiming,
  type Overlap,
  type RunName,
  timingOf,
  toJob
} from "../domain/jobs/spec.js"
export { type JobListing, Jobs, jobsOf, type RunOptions as JobsRunOptions } from "../programs/jobs/jobs.js"
export {
  DEFAULT_LEASE,
  type FireResult,
  type JobEvent,
  type OnceResult,
  type ScheduledJob,
  Scheduler,
  type SchedulerOptions
} from "../programs/jobs/scheduler.js"
export * as JobStores from "../services/jobs/JobStore.js"
export { JobStore, type JobStoreShape } from "../services/jobs/JobStore.js"
export * as JobStorePg from "../services/jobs/pgStore.js"
