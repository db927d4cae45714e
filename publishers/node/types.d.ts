// Type declarations shared by index.d.ts (CommonJS) and index.d.mts (ESM).

import type { Writable } from 'node:stream';

/** Options of LogsSSEPublisher. Every numeric option is checked against its bounds. */
export interface PublisherOptions {
  /** Base URL of the gateway, e.g. `http://logs-sse-gateway:3002`. Required. */
  gatewayUrl: string;
  /** Service token the gateway knows for `serviceName` (`--service-token NAME=TOKEN`). Required. */
  serviceToken: string;
  /** Service segment of the channels, e.g. `faas`: `[A-Za-z0-9_.-]`, 1..64 bytes. Required. */
  serviceName: string;
  /** Service of the logs sent by publishFunctionLog. Default `function` (channels `logs:function:{ws}:{fn}`). */
  functionServiceName?: string;
  /** Give every plain-object logData an `id` (UUID v4) and a `timestamp` (ISO 8601 UTC, ms) when it has none. Default true. */
  addIdAndTimestamp?: boolean;
  /** Entries held in memory; beyond it the oldest is dropped. Default 10000, 1..10000000. */
  maxQueueSize?: number;
  /** Most logs per request. Default 500, 1..1000 (the gateway's limit). */
  maxBatchSize?: number;
  /** Most bytes per request body. Default 524288 (512 KiB), 1024..16777216; halved automatically after a 413. */
  maxBatchBytes?: number;
  /** How long the oldest queued entry may wait for a batch to fill. Default 100 ms, 0..60000. */
  flushIntervalMs?: number;
  /** Timeout of one publish request. Default 10000 ms, 100..600000. */
  requestTimeoutMs?: number;
  /** Base of the full-jitter backoff: retry n waits random(0, min(max, min * 2^n)). Default 100 ms, 1..60000. */
  retryBackoffMinMs?: number;
  /** Cap of the backoff. Default 10000 ms, 1..600000, at least retryBackoffMinMs. */
  retryBackoffMaxMs?: number;
  /** Longest 429 `Retry-After` honoured. Default 300000 ms, 0..3600000. */
  maxRetryAfterMs?: number;
  /** Largest logData, in bytes of JSON; larger throws LogTooLargeError. Default 65536, 1..16777216. */
  maxLogBytes?: number;
  /** Default timeout of flush() and close(), also used on beforeExit. Default 5000 ms, 0..600000. */
  shutdownTimeoutMs?: number;
  /** Called each time the gateway refuses entries for good (401/403/4xx, rejected items). */
  onError?: (error: GatewayError) => void;
  /** Where warnings and errors go (each kind once). Default `console`; `null` silences them. */
  logger?: PublisherLogger | null;
}

export interface PublisherLogger {
  warn(message: string): void;
  error(message: string): void;
  info?(message: string): void;
}

/** Counters of a publisher; see the README for their exact meaning. */
export interface PublisherStats {
  /** Entries accepted into the queue. */
  queued: number;
  /** Entries the gateway accepted. */
  sent: number;
  /** Of `sent`, entries the gateway already had from an earlier attempt of the same batch (stored once, not again). */
  duplicates: number;
  /** Entries discarded without being sent: queue overflow, after close(), or at the close() timeout. */
  dropped: number;
  /** Entries the gateway refused for good. */
  failed: number;
  /** HTTP requests made, retries included. */
  requests: number;
  /** Requests that failed transiently and were scheduled again. */
  retries: number;
  /** Entries waiting in the queue now. */
  queueSize: number;
  /** Entries of the batch being sent now or waiting to be sent again. */
  inFlight: number;
  /** The last error, for humans; null if none. */
  lastError: string | null;
}

/** A JSON value: what logData may be. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue | undefined };

/** A channel segment: a string of `[A-Za-z0-9_.-]` (1..64 bytes) or a safe integer. */
export type SegmentId = string | number;

export class LogsSSEPublisher {
  constructor(options: PublisherOptions);
  /** The validated service name. */
  readonly serviceName: string;
  /** The service of function logs (option functionServiceName). */
  readonly functionServiceName: string;
  /** Queues a log sent as `resource_id`. Returns false (and counts a drop) once closed. Throws for invalid ids or logData. */
  publishLog(workspaceId: SegmentId, resourceId: SegmentId, logData: unknown): boolean;
  /** Queues a log sent as `workflow_id`. */
  publishWorkflowLog(workspaceId: SegmentId, workflowId: SegmentId, logData: unknown): boolean;
  /** Queues a log sent as `function_id`, for service `functionServiceName` (default `function`). */
  publishFunctionLog(workspaceId: SegmentId, functionId: SegmentId, logData: unknown): boolean;
  /** Sends now; resolves true once everything queued is delivered or given up, false after timeoutMs. */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Delivers what is queued within timeoutMs, then stops; resolves true if nothing was lost. */
  close(timeoutMs?: number): Promise<boolean>;
  /** A snapshot of the counters. */
  stats(): PublisherStats;
}

export class PublisherError extends Error {}
export class ConfigError extends PublisherError {}
export class ValidationError extends PublisherError {
  /** The publish API field at fault, e.g. `workspace_id`. */
  readonly field: string;
}
export class LogTooLargeError extends PublisherError {}
export class GatewayError extends PublisherError {
  readonly status: number;
  readonly code: string;
  readonly gatewayMessage: string;
  /** How many entries were given up because of this answer. */
  readonly dropped: number;
}

export interface PinoStreamOptions {
  /** end() also closes the publisher. Default false (end() only flushes). */
  closePublisher?: boolean;
  /** Replace numeric pino levels with their names. Default true. */
  levelLabels?: boolean;
}

/** A pino destination stream: lines without ids are counted in `skipped`, bad ones in `invalid`. */
export interface PinoStream extends Writable {
  skipped: number;
  invalid: number;
}

/** A destination for `pino(options, stream)` that publishes each line through `publisher`. */
export function createPinoStream(publisher: LogsSSEPublisher, options?: PinoStreamOptions): PinoStream;

/** Validates a channel segment; returns it as a string or throws ValidationError. */
export function validateSegment(field: string, value: unknown): string;

export const MAX_SEGMENT_LEN: 64;
export const VERSION: string;
export const DEFAULTS: Readonly<
  Required<
    Omit<
      PublisherOptions,
      'gatewayUrl' | 'serviceToken' | 'serviceName' | 'functionServiceName' | 'addIdAndTimestamp' | 'onError' | 'logger'
    >
  >
>;
export const BOUNDS: Readonly<Record<keyof typeof DEFAULTS, readonly [number, number]>>;
