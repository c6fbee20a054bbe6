// The only place that defines error classes (STYLE rule 6). Each code is stable, documented in
// docs/errors.md (a test keeps the two in step) and never reused once retired.

export const ERROR_CODES = {
  GW_ERR_CONFIG_INVALID: 'a configuration file or device map is unreadable, not YAML, or failed validation',
  GW_ERR_NOT_CONNECTED: 'a device link is not open; the runtime reconnects with backoff',
  GW_ERR_TIMEOUT: 'a device did not answer within its timeout',
  GW_ERR_BAD_FRAME: 'a device answer was garbled (e.g. a Modbus RTU CRC error); counted, the request fails, the link stays',
  GW_ERR_BUFFER: 'the store-and-forward buffer could not be opened or written',
  GW_ERR_TLS_FILE: 'a TLS file named in the config could not be read',
  GW_ERR_EL_IMAGE: 'an EL image could not be decoded (truncated, corrupt, wrong size); it is moved to rejected/ with the reason',
  GW_ERR_EL_MODEL: 'an EL model could not be loaded or failed its self-test; the previous model keeps serving',
  GW_ERR_RELOAD: 'a reload could not be carried out (the loader thread hung or ended); the running configuration stays',
  GW_ERR_OUTPUT: 'an output (outputs.* in the gateway file) cannot be set up: a missing setting or an unreadable secret file',
  GW_ERR_INTERNAL: 'an exception reached the process level uncaught; the gateway stopped cleanly and exits 1 for systemd to restart it',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'GatewayError';
  }
}

/** The link to a device is gone (or never came up); the device runner closes and reconnects. */
export class NotConnectedError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GW_ERR_NOT_CONNECTED', message, options);
    this.name = 'NotConnectedError';
  }
}

/** No answer in time. Treated as a link failure: Modbus TCP sessions that time out are usually dead. */
export class TimeoutError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GW_ERR_TIMEOUT', message, options);
    this.name = 'TimeoutError';
  }
}

/** A garbled answer (CRC error, framing). Counted as an error of the device; the link stays. */
export class BadFrameError extends GatewayError {
  constructor(message: string) {
    super('GW_ERR_BAD_FRAME', message);
    this.name = 'BadFrameError';
  }
}
