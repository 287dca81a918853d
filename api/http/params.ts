import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { isValidName } from '../../sdk/protocol/names.js'
import { ApiError } from '../core/errors.js'

/** A topic, alias or userAccount from the path, checked against the naming rules. */
export function nameParam(value: string | undefined, what: string): string {
  if (!isValidName(value)) throw new ApiError(ErrorCode.INVALID_NAME, `invalid ${what}`)
  return value
}
