import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface ServiceProcess {
  child: ChildProcess
  httpPort: number
  mqttPort: number
  /** Everything the process printed on stdout so far. */
  output(): string
  /** SIGKILL: no shutdown code runs. */
  kill9(): Promise<void>
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>
}

/**
 * Runs `api/main.ts` as its own process, as `npm start` would, and waits for its
 * "mqpush is serving" log line to learn the ports.
 */
export function spawnService(env: Record<string, string>): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: {
      ...process.env,
      MQPUSH_HTTP_HOST: '127.0.0.1',
      MQPUSH_HTTP_PORT: '0',
      MQPUSH_MQTT_HOST: '127.0.0.1',
      MQPUSH_MQTT_PORT: '0',
      MQPUSH_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr?.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`service did not start:\n${out}\n${err}`)),
      30_000,
    )
    child.once('exit', (code) => reject(new Error(`service exited with ${code}:\n${out}\n${err}`)))
    createInterface({ input: child.stdout }).on('line', (line) => {
      out += `${line}\n`
      if (!line.includes('"mqpush is serving"')) return
      clearTimeout(timer)
      const log = JSON.parse(line) as { httpPort: number; mqttPort: number }
      resolve({
        child,
        httpPort: log.httpPort,
        mqttPort: log.mqttPort,
        output: () => out,
        async kill9() {
          child.kill('SIGKILL')
          await exited
        },
        async stop() {
          child.kill('SIGTERM')
          return exited
        },
      })
    })
  })
}
