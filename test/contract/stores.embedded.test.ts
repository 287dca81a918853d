import { openEmbeddedStore } from '../../api/store/embedded/index.js'
import { storeContract } from './stores.contract.js'

storeContract('embedded (SQLite)', async () => {
  const store = openEmbeddedStore({
    dataDir: ':memory:',
    onWriteError: (err) => {
      throw err
    },
  })
  return {
    ...store,
    settle: () => store.writer.commit(() => {}),
    close: () => store.close(),
  }
})
