/**
 * What the browser test page runs: the device SDK as a web app would use it, bundled by esbuild
 * for the browser (MQTT over WebSocket, regId in localStorage).
 */
import { LocalStorageStorage, MqpushDevice, type PushEnvelope } from '../../sdk/device/index.js'

interface StartOptions {
  apiUrl: string
  mqttUrl: string
  appId: string
  appKey: string
}

const state = {
  device: undefined as MqpushDevice | undefined,
  received: [] as PushEnvelope[],
  notifications: 0,
  registered: [] as Array<{ regId: string; renewed: boolean }>,
  errors: [] as string[],
}

const api = {
  state,
  async start(options: StartOptions): Promise<string> {
    const device = new MqpushDevice({
      ...options,
      attributes: { model: navigator.userAgent.includes('Chrome') ? 'chromium' : 'browser' },
      storage: new LocalStorageStorage(),
    })
    device.on('registered', (e) => state.registered.push({ regId: e.regId, renewed: e.renewed }))
    device.on('notification', () => state.notifications++)
    device.on('message', (m) => state.received.push(m))
    device.on('error', (e) => state.errors.push(e.message))
    const connected = new Promise<void>((resolve) => device.once('connected', () => resolve()))
    state.device = device
    const reg = await device.start()
    await connected
    return reg.regId
  },
  async click(messageId: string): Promise<void> {
    await state.device?.reportClick(messageId)
  },
  async setAlias(alias: string): Promise<void> {
    await state.device?.setAlias(alias)
  },
}

;(globalThis as unknown as { mqpushTest: typeof api }).mqpushTest = api
