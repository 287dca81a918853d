/** Minimal typings for untyped dependencies, limited to what mqpush uses. */
declare module 'qlobber' {
  interface QlobberOptions {
    separator?: string
    wildcard_one?: string
    wildcard_some?: string
    match_empty_levels?: boolean
  }
  export class QlobberTrue {
    constructor(options?: QlobberOptions)
    add(topic: string): this
    test(topic: string): boolean
  }
}

declare module 'qlobber/aedes/qlobber-sub.js' {
  interface QlobberSubValue {
    clientId: string
    topic: string
    qos?: number
    rh?: number
    rap?: boolean | number
    nl?: boolean | number
  }
  class QlobberSub {
    constructor(options?: { separator?: string; wildcard_one?: string; wildcard_some?: string })
    subscriptionsCount: number
    add(topic: string, value: QlobberSubValue): this
    remove(topic: string, value: { clientId: string; topic: string }): this
    match(topic: string): QlobberSubValue[]
  }
  export = QlobberSub
}
