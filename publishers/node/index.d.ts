// CommonJS typing: `const LogsSSEPublisher = require('@datashop/logs-sse-publisher')`
// is the class itself, with the rest of the API attached.

import * as types from './types';

declare class LogsSSEPublisher extends types.LogsSSEPublisher {}

declare namespace LogsSSEPublisher {
  export type PublisherOptions = types.PublisherOptions;
  export type PublisherLogger = types.PublisherLogger;
  export type PublisherStats = types.PublisherStats;
  export type PinoStreamOptions = types.PinoStreamOptions;
  export type PinoStream = types.PinoStream;
  export type JsonValue = types.JsonValue;
  export type SegmentId = types.SegmentId;
  export type PublisherError = types.PublisherError;
  export type ConfigError = types.ConfigError;
  export type ValidationError = types.ValidationError;
  export type LogTooLargeError = types.LogTooLargeError;
  export type GatewayError = types.GatewayError;

  export const LogsSSEPublisher: typeof types.LogsSSEPublisher;
  export const PublisherError: typeof types.PublisherError;
  export const ConfigError: typeof types.ConfigError;
  export const ValidationError: typeof types.ValidationError;
  export const LogTooLargeError: typeof types.LogTooLargeError;
  export const GatewayError: typeof types.GatewayError;
  export const createPinoStream: typeof types.createPinoStream;
  export const validateSegment: typeof types.validateSegment;
  export const MAX_SEGMENT_LEN: typeof types.MAX_SEGMENT_LEN;
  export const VERSION: typeof types.VERSION;
  export const DEFAULTS: typeof types.DEFAULTS;
  export const BOUNDS: typeof types.BOUNDS;
}

export = LogsSSEPublisher;
