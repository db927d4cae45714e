// What the page exposes about itself on `window.__datashopDemo`, for people
// poking at the demo in devtools and for the end-to-end tests: per pane, how
// many logs arrived and what is buffered (the list is virtualized, so the DOM
// only holds the visible rows), and the delivery latency of stamped logs.
import type { LogEntry } from '@datashop/logs-sse-client';

export interface PaneTelemetry {
  /** Logs that arrived in this pane since it mounted (restored ones included). */
  received: number;
  /** The entries the pane holds now, oldest first. */
  entries: () => readonly LogEntry[];
}

export interface DemoTelemetry {
  panes: Record<string, PaneTelemetry>;
  /** publish → on-screen delay in ms of every log stamped with `publishedAt`, per pane. */
  latencies: Record<string, number[]>;
}

const MAX_SAMPLES = 200_000;

declare global {
  interface Window {
    __datashopDemo?: DemoTelemetry;
  }
}

export function telemetry(): DemoTelemetry {
  window.__datashopDemo ??= { panes: {}, latencies: {} };
  return window.__datashopDemo;
}

export function recordLatency(pane: string, ms: number): void {
  const samples = (telemetry().latencies[pane] ??= []);
  if (samples.length < MAX_SAMPLES) samples.push(ms);
}

/** The wall clock with sub-millisecond precision, comparable with Node's `performance.timeOrigin + performance.now()`. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
