import { Aedes } from 'aedes'
import { createServer } from 'node:net'
import { servePushes } from './push-endpoint.js'

/**
 * Plain Aedes for the baselines: default options, in-memory persistence, no hooks.
 * `aedes-server.js MQTT_PORT [HTTP_PORT]`: with an HTTP port, also behind the least HTTP push
 * endpoint there can be (`push-endpoint.ts`): the `aedes-http` baseline.
 */
const port = Number(process.argv[2])
const httpPort = process.argv[3] === undefined ? undefined : Number(process.argv[3])
const aedes = await Aedes.createBroker()
const server = createServer((socket) => {
  socket.setNoDelay(true)
  aedes.handle(socket)
})
server.listen(port, '127.0.0.1')
if (httpPort !== undefined) await servePushes(aedes, httpPort)
// the bench stops it with SIGTERM: exit normally, so that node flags such as --cpu-prof write
process.on('SIGTERM', () => process.exit(0))
