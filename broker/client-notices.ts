import type { Aedes } from 'aedes'

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * aedes announces every connect and every disconnect with a publish of its own, on
 * `$SYS/<broker id>/new/clients` and `$SYS/<broker id>/disconnect/clients` (the client id as the
 * payload). In mqpush these reach nobody: no client may subscribe to `$SYS` (authorizeSubscribe
 * grants a device its own topics only), and the one listener, aedes' own `closeSameClients`,
 * acts only on another broker's notice, which an in-process emitter never carries. Each one still
 * ran aedes' whole publish series (a packet object, the retained check, the emitter's match):
 * ~2 % of the CPU of a reconnect with its queue (the offline drain's profile, twentieth
 * session). This broker's own two notices are dropped; every other publish, `$SYS` included
 * (the heartbeat, the birth, another broker's notices), goes through aedes as before.
 *
 * For a broker that shares its emitter with other nodes (a cluster on mqemitter-redis, say) the
 * notices are how the other nodes close their copy of a client that connected here: such a
 * broker must not call this.
 */
export function dropOwnClientNotices(aedes: Aedes): void {
  const broker = aedes as any
  const connected = `$SYS/${broker.id as string}/new/clients`
  const disconnected = `$SYS/${broker.id as string}/disconnect/clients`
  const publish = broker.publish as (packet: any, client?: any, done?: any) => void
  broker.publish = function (this: unknown, packet: any, client?: any, done?: any) {
    const topic = packet?.topic
    // '$' (36) first: a push's topic is never compared with the two strings
    if (
      typeof topic === 'string' &&
      topic.charCodeAt(0) === 36 &&
      (topic === connected || topic === disconnected)
    ) {
      const callback = typeof client === 'function' ? client : done
      if (typeof callback === 'function') process.nextTick(callback)
      return
    }
    return publish.call(this, packet, client, done)
  }
}
