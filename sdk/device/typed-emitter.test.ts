import { describe, expect, it } from 'vitest'
import { TypedEmitter } from './typed-emitter.js'

interface Events {
  n: number
  s: string
}

class Emitter extends TypedEmitter<Events> {
  fire<E extends keyof Events>(event: E, value: Events[E]): boolean {
    return this.emit(event, value)
  }
}

describe('TypedEmitter', () => {
  it('calls listeners in order with the value; the returned function removes one', () => {
    const e = new Emitter()
    const seen: string[] = []
    const off = e.on('n', (n) => seen.push(`first ${n}`))
    e.on('n', (n) => seen.push(`second ${n}`))
    expect(e.fire('n', 1)).toBe(true)
    off()
    e.fire('n', 2)
    expect(seen).toEqual(['first 1', 'second 1', 'second 2'])
    expect(e.fire('s', 'nobody')).toBe(false)
  })

  it('once runs a listener for one event; off removes a once listener too', () => {
    const e = new Emitter()
    const seen: number[] = []
    e.once('n', (n) => seen.push(n))
    const never = (n: number) => seen.push(-n)
    e.once('n', never)
    e.off('n', never)
    e.fire('n', 1)
    e.fire('n', 2)
    expect(seen).toEqual([1])
    expect(e.listenerCount('n')).toBe(0)
  })

  it('a throwing listener does not stop the others; its error goes to onListenerError', () => {
    const errors: Array<[unknown, string]> = []
    const e = new Emitter((err, event) => errors.push([err, event]))
    const seen: string[] = []
    const boom = new Error('boom')
    e.on('s', () => {
      throw boom
    })
    e.on('s', (s) => seen.push(s))
    e.fire('s', 'x')
    expect(seen).toEqual(['x'])
    expect(errors).toEqual([[boom, 's']])
  })
})
