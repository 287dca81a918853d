import { Aedes } from 'aedes'
import { createServer } from 'node:net'

/** Plain Aedes for the baseline: default options, in-memory persistence, no hooks. */
const port = Number(process.argv[2])
const aedes = await Aedes.createBroker()
const server = createServer((socket) => {
  socket.setNoDelay(true)
  aedes.handle(socket)
})
server.listen(port, '127.0.0.1')
// the bench stops it with SIGTERM: exit normally, so that node flags such as --cpu-prof write
process.on('SIGTERM', () => process.exit(0))
