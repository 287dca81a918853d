import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/**
 * A full collection in a load-generator process, run before a measured phase (in the workers,
 * not before the fixed rate's: see `WorkerPool.reset`): the clients created while connecting
 * sit in the young generation until the first scavenge, which then copies them all — a
 * 15–30 ms pause of the generator inside the window it measures. The service under test is
 * never collected this way.
 */
export function collectGarbage(): void {
  gc()
}
