/** The logging the core needs; pino's logger satisfies it structurally. */
export interface Logger {
  error(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
}

export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
}
