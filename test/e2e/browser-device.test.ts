import { build } from 'esbuild'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../helpers/server.js'

/**
 * The device SDK in a real browser (Debian's chromium): registration over HTTP from another
 * origin (CORS), MQTT over WebSocket, the regId kept in localStorage across a reload, clicks.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const hasChromium = existsSync(CHROMIUM)
if (!hasChromium) {
  console.warn(`SKIPPED browser tests: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`)
}

describe.skipIf(!hasChromium)('device SDK in Chromium', () => {
  let s: TestServer
  let site: Server
  let siteUrl: string
  let browser: Browser
  let page: Page

  beforeAll(async () => {
    s = await startTestServer()
    const bundle = await build({
      entryPoints: [new URL('./browser-entry.ts', import.meta.url).pathname],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    })
    const js = bundle.outputFiles[0]!.text
    // the web app lives on its own origin, as it would in production
    site = createServer((req, res) => {
      if (req.url === '/app.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(js)
      } else {
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<!doctype html><title>mqpush</title><script src="/app.js"></script>')
      }
    })
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r))
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    page = await browser.newPage()
    page.on('pageerror', (e) => console.error('page error:', e.message))
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((r) => site?.close(r))
    await s?.stop()
  })

  const startDevice = () =>
    page.evaluate((o) => (globalThis as any).mqpushTest.start(o), {
      apiUrl: s.baseUrl,
      mqttUrl: s.wsUrl,
      appId: s.defaultApp.id,
      appKey: s.defaultApp.key,
    }) as Promise<string>
  const state = () => page.evaluate(() => (globalThis as any).mqpushTest.state)

  it('registers, connects over WebSocket and receives a notification', async () => {
    await page.goto(siteUrl)
    const regId = await startDevice()
    expect(regId).toMatch(/^[0-9A-Za-z]{22}$/)
    const res = await s.push({
      target: { regIds: [regId] },
      title: 'In the browser',
      description: 'hi',
    })
    await expect
      .poll(async () => (await state()).received.map((m: any) => m.id))
      .toEqual([res.body.messageId])
    const st = await state()
    expect(st.notifications).toBe(1)
    expect(st.received[0]).toMatchObject({ kind: 'notification', title: 'In the browser' })
    expect(
      (await s.http('GET', `/v1/devices/${regId}`, { auth: `Bearer ${s.defaultApp.secret}` })).body,
    ).toMatchObject({
      online: true,
      attributes: { model: 'chromium' },
    })
  })

  it('keeps its regId across a reload, gets what waited, and shows nothing twice', async () => {
    const before = (await state()).registered[0].regId as string
    const first = (await state()).received[0].id as string
    await page.reload()
    // while the page is gone, a message waits in the device's queue
    const waiting = await s.push({
      target: { regIds: [before] },
      kind: 'passThrough',
      payload: 'waited',
    })
    const regId = await startDevice()
    expect(regId).toBe(before)
    expect((await state()).registered).toEqual([{ regId, renewed: true }])
    await expect
      .poll(async () => (await state()).received.map((m: any) => m.id))
      .toEqual([waiting.body.messageId])
    expect((await state()).received.map((m: any) => m.id)).not.toContain(first)
  })

  it('sets an alias and reports a click', async () => {
    await page.evaluate(() => (globalThis as any).mqpushTest.setAlias('browser-user'))
    const res = await s.push({
      target: { aliases: ['browser-user'] },
      title: 'Alias',
      description: 'works',
    })
    await expect.poll(async () => (await state()).received.length).toBe(2)
    expect((await state()).received[1]).toMatchObject({
      id: res.body.messageId,
      target: { alias: 'browser-user' },
    })
    await page.evaluate((id) => (globalThis as any).mqpushTest.click(id), res.body.messageId)
    await expect
      .poll(
        async () =>
          (
            await s.http('GET', `/v1/messages/${res.body.messageId}`, {
              auth: `Bearer ${s.defaultApp.secret}`,
            })
          ).body.funnel,
      )
      .toMatchObject({ delivered: 1, clicked: 1 })
    expect((await state()).errors).toEqual([])
  })
})
