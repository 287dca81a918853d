import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { DeviceStorage } from './device-storage.js'

/**
 * Node: keeps the SDK's data in one JSON file. Every change rewrites the file atomically
 * (temporary file, then rename), so a crash leaves the old or the new version, never half of
 * one. The file holds the device token, so it is created readable by its owner only.
 *
 * Not exported from `sdk/device/index.js`, which browsers import: import it from
 * `sdk/device/file-storage.js`.
 */
export class FileStorage implements DeviceStorage {
  readonly path: string
  #data: Promise<Map<string, string>> | undefined
  /** Writes run one after the other, each writing the state of its time. */
  #writing: Promise<void> = Promise.resolve()

  constructor(path: string) {
    if (!path) throw new TypeError('FileStorage: a file path is required')
    this.path = path
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#load()).get(key)
  }

  async set(key: string, value: string): Promise<void> {
    const data = await this.#load()
    data.set(key, value)
    await this.#save(data)
  }

  async delete(key: string): Promise<void> {
    const data = await this.#load()
    if (data.delete(key)) await this.#save(data)
  }

  #load(): Promise<Map<string, string>> {
    this.#data ??= readFile(this.path, 'utf8').then(parse, (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return new Map<string, string>()
      throw err
    })
    return this.#data
  }

  #save(data: Map<string, string>): Promise<void> {
    const write = async () => {
      const tmp = `${this.path}.${process.pid}.tmp`
      await mkdir(dirname(this.path), { recursive: true })
      await writeFile(tmp, JSON.stringify(Object.fromEntries(data)), { mode: 0o600 })
      await rename(tmp, this.path)
    }
    const done = this.#writing.then(write)
    this.#writing = done.catch(() => undefined)
    return done
  }
}

/**
 * A file that is not a JSON object of strings is treated as empty: it only caches what the
 * service can hand out again (a fresh registration), and a device must not stay stuck on it.
 */
function parse(text: string): Map<string, string> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return new Map()
  }
  const data = new Map<string, string>()
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return data
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') data.set(k, v)
  return data
}
