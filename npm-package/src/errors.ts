// The one error type of the package. Errors of the wasm client (which carry
// a `code`), refused channels, failed connections and a missing provider are
// all reported as a LogsSSEError, so callers switch on `code`.

import type { ConnectionStatus, FailureReason } from './types.js';

/** Error codes this layer produces besides the wasm client's own. */
export type LogsSSEErrorCode =
  // from the wasm client's `subscribe()` and constructor
  | 'invalid_channel'
  | 'invalid_options'
  | 'too_many_subscriptions'
  | 'too_many_channels'
  | 'closed'
  | 'reentrant_call'
  // added here
  | 'denied'
  | 'no_provider'
  | FailureReason
  | (string & {});

export class LogsSSEError extends Error {
  override readonly name = 'LogsSSEError';
  readonly code: LogsSSEErrorCode;
  /** HTTP status the gateway answered, when known. */
  readonly httpStatus?: number;

  constructor(code: LogsSSEErrorCode, message: string, httpStatus?: number) {
    super(message);
    this.code = code;
    if (httpStatus !== undefined) this.httpStatus = httpStatus;
  }

  /** Wraps anything thrown by the wasm client (a LogsClientError has a `code`). */
  static from(thrown: unknown, fallbackCode: LogsSSEErrorCode = 'unknown'): LogsSSEError {
    if (thrown instanceof LogsSSEError) return thrown;
    if (thrown !== null && typeof thrown === 'object') {
      const code = (thrown as { code?: unknown }).code;
      const message = (thrown as { message?: unknown }).message;
      return new LogsSSEError(
        typeof code === 'string' ? code : fallbackCode,
        typeof message === 'string' ? message : String(thrown),
      );
    }
    return new LogsSSEError(fallbackCode, String(thrown));
  }

  /** The error a failing or retrying connection reports, or null when healthy. */
  static fromStatus(status: ConnectionStatus): LogsSSEError | null {
    if ((status.state !== 'failed' && status.state !== 'reconnecting') || status.reason === undefined) {
      return null;
    }
    const message = status.message ?? describeReason(status.reason, status.httpStatus);
    return new LogsSSEError(status.code ?? status.reason, message, status.httpStatus);
  }
}

function describeReason(reason: FailureReason, httpStatus: number | undefined): string {
  const http = httpStatus === undefined ? '' : ` (HTTP ${httpStatus})`;
  switch (reason) {
    case 'network':
      return 'the connection to the logs gateway dropped or the browser is offline';
    case 'gateway_unreachable':
      return 'the logs gateway cannot be reached (refused, DNS or CORS)';
    case 'gateway_error':
      return `the logs gateway answered with an error${http}`;
    case 'unauthorized':
      return `not signed in for the logs stream${http}`;
    case 'forbidden':
      return `not allowed to read these logs${http}`;
    case 'bad_request':
      return `the logs gateway refused the request${http}`;
    case 'gateway_closed':
      return 'the logs gateway closed the stream';
    case 'wasm_unavailable':
      return 'the logs client could not load its WebAssembly module';
  }
}
