// ESM entry: the same implementation as the CommonJS entry (one module
// instance, so `instanceof` and the process hooks are shared by both).
import cjs from './index.js';

export const {
  LogsSSEPublisher,
  DEFAULTS,
  BOUNDS,
  VERSION,
  MAX_SEGMENT_LEN,
  validateSegment,
  createPinoStream,
  PublisherError,
  ConfigError,
  ValidationError,
  LogTooLargeError,
  GatewayError,
} = cjs;

export default LogsSSEPublisher;
