import { describe } from 'vitest'
import { EmbeddedBrokerPersistence } from '../../api/store/embedded/broker-persistence.js'
import { openDatabase } from '../../api/store/embedded/database.js'
import { SqliteWriter } from '../../api/store/embedded/writer.js'
import { runAedesAbstractSuite } from './aedes-abstract.js'

describe('embedded broker persistence: aedes-persistence abstract suite', () => {
  runAedesAbstractSuite(() => {
    const db = openDatabase({ dataDir: ':memory:' })
    const writer = new SqliteWriter(db, (err) => {
      throw err
    })
    return new EmbeddedBrokerPersistence(db, writer)
  })
})
