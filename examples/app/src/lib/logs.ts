// How the demo reads a log: the publishers' `logData` is free-form JSON, so
// every field is looked at defensively. Rows are derived once per entry
// (entries keep their identity across snapshots) and cached.
import type { LogData, LogEntry } from '@datashop/logs-sse-client';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface LogRow {
  /** The gateway cursor: unique per log, the React key. */
  key: string;
  channel: string;
  /** Service segment of the channel (`etl`, `faas`, `function`, …). */
  service: string;
  /** Resource segment of the channel (workflow or function id), or '' for a service-level publish. */
  resource: string;
  /** When it happened: the log's own timestamp, else the gateway's receive time (ms since epoch). */
  time: number;
  level: Level;
  message: string;
  execution: string | null;
  /** Lowercased text the text filter searches. */
  haystack: string;
  entry: LogEntry;
}

const LEVELS: Record<string, Level> = {
  trace: 'trace', debug: 'debug', info: 'info', information: 'info', notice: 'info',
  warn: 'warn', warning: 'warn', error: 'error', err: 'error', fatal: 'error', critical: 'error',
};

const rows = new WeakMap<LogEntry, LogRow>();

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function text(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}

export function levelOf(logData: unknown): Level {
  const raw = text(record(logData).level)?.toLowerCase();
  return (raw !== undefined && LEVELS[raw]) || 'info';
}

function timeOf(data: Record<string, unknown>, fallback: number): number {
  const t = data.timestamp ?? data.time;
  if (typeof t === 'number' && Number.isFinite(t)) return t;
  if (typeof t === 'string') {
    const parsed = Date.parse(t);
    if (!Number.isNaN(parsed)) return parsed;
  }
  return fallback;
}

export function toRow(entry: LogEntry): LogRow {
  let row = rows.get(entry);
  if (row !== undefined) return row;
  const data = record(entry.logData);
  const [, service = '', , resource = ''] = entry.channel.split(':');
  const message = text(data.message) ?? text(data.msg) ?? JSON.stringify(entry.logData) ?? '';
  const execution = text(data.execution_id);
  const level = levelOf(entry.logData);
  row = {
    key: entry.cursor,
    channel: entry.channel,
    service,
    resource,
    time: timeOf(data, entry.ts),
    level,
    message,
    execution,
    haystack: `${level} ${resource} ${execution ?? ''} ${message}`.toLowerCase(),
    entry,
  };
  rows.set(entry, row);
  return row;
}

/** The subscription-side filter of every page: `trace` lines stay out of the buffer, so `maxLogs` counts lines people read. */
export function withoutTrace(logData: LogData): boolean {
  return levelOf(logData) !== 'trace';
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
