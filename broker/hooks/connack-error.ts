/** An authentication refusal with its MQTT 3.1.1 CONNACK return code (2–5). */
export class ConnackError extends Error {
  override name = 'ConnackError'
  readonly returnCode: 2 | 3 | 4 | 5

  constructor(returnCode: 2 | 3 | 4 | 5, message: string) {
    super(message)
    this.returnCode = returnCode
  }
}
