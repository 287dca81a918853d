import { createTask, type ScheduledTask } from 'node-cron'
import type { Logger } from '../core/logger.js'

/** A background job: node-cron only triggers it; whatever must survive lives in the store. */
export interface Job {
  name: string
  /** Cron expression (with seconds, as node-cron accepts). */
  schedule: string
  run(): Promise<unknown>
}

/**
 * Starts the jobs (STYLE rule 9): a failing run is logged and the job keeps its schedule;
 * runs never overlap; `stop` waits for nothing and is safe to call twice.
 */
export function startJobs(jobs: readonly Job[], log: Logger) {
  const tasks: ScheduledTask[] = []
  const run = async (job: Job) => {
    const started = Date.now()
    try {
      const result = await job.run()
      log.debug({ job: job.name, result, ms: Date.now() - started }, 'job finished')
      return result
    } catch (err) {
      log.error({ err, job: job.name }, 'job failed')
      return undefined
    }
  }
  for (const job of jobs) {
    const task = createTask(job.schedule, () => run(job), { name: job.name, noOverlap: true })
    void task.start()
    tasks.push(task)
  }
  return {
    /** Runs a job now (operators and tests), outside its schedule. */
    runNow(name: string): Promise<unknown> {
      const job = jobs.find((j) => j.name === name)
      if (!job) throw new Error(`no job ${name}`)
      return run(job)
    },
    async stop(): Promise<void> {
      for (const t of tasks.splice(0)) await t.destroy()
    },
  }
}
