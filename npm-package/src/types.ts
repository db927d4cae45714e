// Public types of the package: log entries, connection and channel status,
// subscription updates, and the options of the framework-free client.
//
// They mirror the JS API of client-wasm (see client-wasm/README.md) but are
// declared here, so the package's public types do not depend on the
// generated glue and can say what this layer adds (e.g. `wasm_unavailable`).
// contract.ts checks they still say the same as the generated declarations.

/**
 * The publisher's `logData`, as published. The default says only "an object";
 * pass your own shape as the type parameter of `useLogsSSE<MyLog>()`.
 */
export type LogData = { [key: string]: unknown };

/** One log as the gateway sent it (the `data` of an SSE `log` event). */
export interface LogEntry<T = LogData> {
  /** The resource channel the log was published to, e.g. `logs:etl:ws1:wf9`. */
  readonly channel: string;
  /** Its position on the gateway, `{epoch-hex}-{seq}`; unique per log. */
  readonly cursor: string;
  /** Gateway receive time, milliseconds since the Unix epoch. */
  readonly ts: number;
  /** The publisher's `logData`, untouched. */
  readonly logData: T;
}

/** State of the page's one connection to the gateway. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'failed' | 'closed';

/** Why the connection is not open (set with `reconnecting` and `failed`). */
export type FailureReason =
  | 'network'
  | 'gateway_unreachable'
  | 'gateway_error'
  | 'unauthorized'
  | 'forbidden'
  | 'bad_request'
  | 'gateway_closed'
  /** This package could not load or start its WebAssembly module. */
  | 'wasm_unavailable';

/** The connection's status; the same object until something changes. */
export interface ConnectionStatus {
  readonly state: ConnectionState;
  readonly reason?: FailureReason;
  readonly message?: string;
  readonly httpStatus?: number;
  /**
   * The gateway's error or close code, e.g. `invalid_channel`, `expired_token`,
   * `invalid_signature`, `forbidden_channels`, `auth_expired`, or
   * `token_getter_failed` when `getToken` threw, rejected or hung.
   */
  readonly code?: string;
  /** Reconnect attempt (0 while healthy). */
  readonly attempt: number;
  readonly retryInMs?: number;
  readonly connectionId?: string;
  /**
   * While open: how channel changes reach the stream. `live` (the gateway's
   * `hello` gave a control secret): one POST to the stream's control
   * endpoint, the `EventSource` stays; `reconnect`: a new stream for the new
   * set, resuming every channel from its cursor.
   */
  readonly channelChanges?: ChannelChangeMode;
  /** Why the last channel change reopened the stream instead; set until the new stream's `hello`. */
  readonly fallback?: ChannelChangeFallback;
  /**
   * How this tab reaches the connection: `worker` (a SharedWorker owns the
   * browser's one stream), `leader` (this tab owns it for every tab),
   * `follower` (another tab owns it), `tab` (this tab's own stream: sharing
   * turned off, or not available in this browser).
   */
  readonly sharing?: SharingMode;
}

/** How a tab reaches the connection; see `ConnectionStatus.sharing`. */
export type SharingMode = 'worker' | 'leader' | 'follower' | 'tab';

/** How channel changes reach the open stream. */
export type ChannelChangeMode = 'live' | 'reconnect';

/**
 * Why a channel change reopened the stream: `no_secret` (a gateway without
 * the control endpoint), `overlap` (a channel with history next to a held
 * channel covering it, or covered by it), the control call's answer (`not_found`
 * 404, `unsupported` 405/501: later changes reconnect without trying,
 * `unauthorized` 401, `forbidden` 403, `rejected` other 4xx, `gateway_error`
 * 5xx/408/429), `network` (no answer) or `timeout` (none within 10 s).
 */
export type ChannelChangeFallback =
  | 'no_secret'
  | 'overlap'
  | 'not_found'
  | 'unsupported'
  | 'unauthorized'
  | 'forbidden'
  | 'rejected'
  | 'gateway_error'
  | 'network'
  | 'timeout';

/** How the page's channel changes were applied. */
export interface ChannelChangeStats {
  /** How the next change will travel. */
  readonly mode: ChannelChangeMode;
  /** Changes applied live, on the open stream. */
  readonly live: number;
  /** Changes that reopened the stream instead (every fallback). */
  readonly reopened: number;
  /** Why the last of those reopened it. */
  readonly lastFallback?: ChannelChangeFallback;
}

/** The gateway's answer for one channel. */
export type ChannelStatusKind = 'subscribed' | 'resumed' | 'gap' | 'denied';

/** Logs between the two cursors may be missing: refetch them from your API. */
export interface GapInfo {
  readonly from?: string;
  readonly to?: string;
  readonly reason?: string;
}

/** What a subscription's `onUpdate` receives. */
export type SubscriptionUpdate =
  /** Logs were added: read `subscription.snapshot()`. */
  | { readonly type: 'logs'; readonly added: number }
  /** The gateway's answer for the channel. */
  | {
      readonly type: 'status';
      readonly status: ChannelStatusKind;
      readonly cursor?: string;
      readonly reason?: string;
      readonly replayed: number;
    }
  /** Logs may be missing (history no longer covers them, gateway restarted). */
  | ({ readonly type: 'gap' } & GapInfo)
  /** The subscription could not be made (invalid channel, limits, wasm not loadable). */
  | { readonly type: 'error'; readonly error: Error & { readonly code: string } };

/** Options of `client.subscribe(channel, options, onUpdate)`. */
export interface SubscribeOptions<T = LogData> {
  /** Logs kept, oldest dropped first (1 – 100000). Default 1000. */
  maxLogs?: number;
  /** Keep logs and cursor in `sessionStorage`. Default false (true when `persistKey` is set). */
  persist?: boolean;
  /** `sessionStorage` key. Default `datashop-logs-sse:v1:{channel}`. */
  persistKey?: string;
  /** Where a channel new to the stream starts: `"live"` (default), `"earliest"`, `"last:N"` or a cursor. */
  resumeFrom?: string;
  /**
   * Backfill: start with the last `history` logs the gateway still holds,
   * then live, like `kubectl logs --tail=N -f` (0 – 100000, default 0 = live).
   * A subscription restored from `sessionStorage` resumes from its cursor
   * instead of backfilling again; backfilled logs pass `filter` and count
   * against `maxLogs`. Do not combine with `resumeFrom`.
   */
  history?: number;
  /** Keep a log only when this returns true. Called as logs arrive; must not call the client. */
  filter?: (entry: LogEntry<T>) => boolean;
}

/** A live subscription to one channel. */
export interface Subscription<T = LogData> {
  /** The subscribed channel. */
  readonly channel: string;
  /** The gateway's last answer for the channel, or undefined before it answered. */
  readonly channelStatus: ChannelStatusKind | undefined;
  /**
   * The buffered logs, oldest first (publish order), as a frozen array. The
   * same array is returned until the buffer changes. Empty until the
   * WebAssembly module is loaded.
   */
  snapshot(): readonly LogEntry<T>[];
  /** Ends the subscription (idempotent). The channel lingers briefly on the stream. */
  unsubscribe(): void;
}

/** A source of the subscriber's token: a value or a (possibly async) getter. */
export type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

/**
 * Diagnostics of the wasm client (malformed events, storage problems,
 * throwing callbacks), and of this package's sharing across tabs
 * (`sharing`: a tab that could not share and uses a stream of its own).
 */
export interface Diagnostic {
  readonly kind: 'malformed_event' | 'storage' | 'callback' | 'sharing';
  readonly message: string;
}

/**
 * Tuning of the shared wasm client. Applied by whichever user creates the
 * page's client for a gateway; later users join that client as it is.
 */
export interface ClientTuning {
  /** Lower bound of the reconnect delay, ms. Default 500. */
  backoffMinMs?: number;
  /** Upper bound of the reconnect delay, ms. Default 30000. */
  backoffMaxMs?: number;
  /** A stream open this long resets the backoff, ms. Default 5000. */
  healthyAfterMs?: number;
  /** A channel stays on the stream this long after its last unsubscribe, ms. Default 1500. */
  lingerMs?: number;
  /** Channel changes closer together than this share one control call (or reconnect), ms. Default 25. */
  coalesceMs?: number;
  /** Subscriptions per page client. Default 256. */
  maxSubscriptions?: number;
  /** Distinct channels on the stream. Default 64. */
  maxChannels?: number;
  /** Least interval between two storage writes of one subscription, ms. Default 1000. */
  persistThrottleMs?: number;
  /** Most bytes written per storage key. Default 262144. */
  persistMaxBytes?: number;
  /** Receives diagnostics. Default: `console.warn`. */
  onDiagnostic?: (diagnostic: Diagnostic) => void;
}

/** Options of `createLogsClient()` (and the props of `LogsSSEProvider`). */
export interface LogsClientOptions extends ClientTuning {
  /** The gateway's stream URL, absolute or relative to the page. Default `/api/logs/stream`. */
  gatewayUrl?: string;
  /** Send cookies with the stream (`EventSource` `withCredentials`). Default false. */
  withCredentials?: boolean;
  /**
   * The subscriber's JWT, or a function (sync or async) returning it. The
   * page's connection calls it before its first stream and whenever the
   * gateway ends the stream because the token expired, then resumes from its
   * cursors. Sent as `access_token` in the stream URL: the gateway must run
   * with `--allow-query-token`. Cookie auth needs only `withCredentials`.
   * One connection per gateway per page: the first user's source is used.
   */
  token?: TokenSource;
  /**
   * Where to load the WebAssembly module from, when the bundler's asset URL
   * is not what you want (CDN, strict CSP). Default: the `.wasm` file next
   * to this package's code, as emitted by the bundler.
   */
  wasmUrl?: string | URL;
  /**
   * Share one stream among all tabs of the browser that use this gateway
   * (a SharedWorker, else a leader tab elected with Web Locks; see
   * `ConnectionStatus.sharing`). Each tab keeps its own subscriptions,
   * buffers, filters and sessionStorage. Default true; read by whoever
   * creates the page's client.
   */
  shareAcrossTabs?: boolean;
  /**
   * How long the page's client stays alive after its last user releases it,
   * so a remount or a route change reuses it. Default 1000 ms.
   */
  releaseDelayMs?: number;
}

/** Counters of the wasm client. */
export interface ClientStats {
  readonly events: number;
  readonly logs: number;
  readonly delivered: number;
  readonly duplicates: number;
  readonly filtered: number;
  readonly malformed: number;
  readonly opens: number;
  readonly gaps: number;
  /** How channel changes were applied: live, or by reopening (and why). */
  readonly channelChanges: ChannelChangeStats;
}
