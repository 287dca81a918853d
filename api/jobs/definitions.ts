import type { DeviceService } from '../core/devices/device-service.js'
import type { Clock } from '../core/clock.js'
import type { MessageStore } from '../core/messages/message-store.js'
import type { Job } from './index.js'

const DAY_MS = 24 * 60 * 60 * 1000

export interface JobDeps {
  clock: Clock
  devices: DeviceService
  messages: MessageStore
  /** Removes expired packets from offline queues; returns how many went. */
  sweepExpired(now: number): Promise<number>
  messageRetentionDays: number
  deviceInactiveDays: number
}

/** The jobs of a node, as data. */
export function defineJobs(d: JobDeps): Job[] {
  return [
    {
      // an expired message is never delivered anyway (the broker checks at delivery); this
      // keeps the queues of devices that stay away from growing
      name: 'sweep-expired',
      schedule: '0 * * * * *',
      run: () => d.sweepExpired(d.clock.now()),
    },
    {
      // §5.2.3: message records are kept 30 days
      name: 'message-retention',
      schedule: '0 7 * * * *',
      run: async () => {
        const before = d.clock.now() - d.messageRetentionDays * DAY_MS
        let total = 0
        for (let n = -1; n !== 0; total += n)
          n = await d.messages.deleteMessagesBefore(before, 1000)
        return total
      },
    },
    {
      // §4.2.2: a regId that has not connected for three months becomes invalid
      name: 'inactive-devices',
      schedule: '0 17 3 * * *',
      run: () => d.devices.invalidateInactive(d.deviceInactiveDays * DAY_MS),
    },
  ]
}
