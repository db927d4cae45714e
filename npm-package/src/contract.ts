// The type contract between client-wasm and this package, checked by tsc.
//
// client-wasm declares its JS API in Rust (the `typescript_custom_section`
// of `client-wasm/src/wasm/convert.rs` and its `#[wasm_bindgen]` signatures);
// wasm-bindgen writes them to `logs_sse_client.d.ts`, which build.sh copies
// to `src/wasm/`. The raw client this package drives is picked from those
// declarations (registry.ts). The public types of this package (types.ts)
// are its own, with its documentation and what this layer adds; this module
// proves they say the same as the generated ones, so a change on one side
// the other does not follow fails `tsc --strict` (no error text at runtime:
// the module has no code).
//
// `Same<A, B>` is mutual assignability plus the same property names, so a
// field added, dropped, renamed or retyped on either side (optional ones
// included) is caught; `readonly` is this package's choice and not compared.

import type {
  ChannelChangeFallback as WasmChannelChangeFallback,
  ChannelChangeMode as WasmChannelChangeMode,
  ChannelChangeStats as WasmChannelChangeStats,
  ChannelStatusKind as WasmChannelStatusKind,
  ClientOptions as WasmClientOptions,
  ClientStats as WasmClientStats,
  ConnectionState as WasmConnectionState,
  ConnectionStatus as WasmConnectionStatus,
  Diagnostic as WasmDiagnostic,
  FailureReason as WasmFailureReason,
  LogEntry as WasmLogEntry,
  SubscribeOptions as WasmSubscribeOptions,
  SubscriptionUpdate as WasmSubscriptionUpdate,
} from './wasm/logs_sse_client.js';
import type {
  ChannelChangeFallback,
  ChannelChangeMode,
  ChannelChangeStats,
  ChannelStatusKind,
  ClientStats,
  ClientTuning,
  ConnectionState,
  ConnectionStatus,
  Diagnostic,
  FailureReason,
  LogEntry,
  LogsClientOptions,
  SubscribeOptions,
  SubscriptionUpdate,
} from './types.js';

type Same<A, B> = [A] extends [B]
  ? [B] extends [A]
    ? [keyof A] extends [keyof B]
      ? [keyof B] extends [keyof A]
        ? true
        : false
      : false
    : false
  : false;

/** Whether `A` is assignable to `B`. */
type Extends<A, B> = [A] extends [B] ? true : false;

/** Fails to compile unless `T` is `true`. */
type Holds<T extends true> = T;

/** The variant of an update union with the given `type`. */
type Variant<U, K> = Extract<U, { type: K }>;

/** Reasons this package adds: loading its own WebAssembly module failed. */
type OwnReason = 'wasm_unavailable';
/** Updates this package adds: a subscription that could not be made. */
type OwnUpdate = 'error';
/**
 * Client options this package takes in `LogsClientOptions` rather than
 * `ClientTuning`, or sets itself (`transport`: a tab's stream relayed from
 * the connection's owner).
 */
type ConnectionOptions = 'withCredentials' | 'token' | 'getToken' | 'transport';
/** Status this package adds: how the tab reaches the connection it shares with other tabs. */
type OwnStatus = 'sharing';
/** Diagnostics this package adds: a tab that could not share the connection. */
type OwnDiagnostic = 'sharing';

/** Each check names what must agree; a `false` here is the drift. */
export type ContractChecks = [
  Holds<Same<LogEntry<unknown>, WasmLogEntry>>,
  Holds<Same<ConnectionState, WasmConnectionState>>,
  Holds<Same<FailureReason, WasmFailureReason | OwnReason>>,
  Holds<Same<Omit<ConnectionStatus, 'reason' | OwnStatus>, Omit<WasmConnectionStatus, 'reason'>>>,
  Holds<Same<ConnectionStatus['reason'], WasmConnectionStatus['reason'] | OwnReason>>,
  Holds<Same<ChannelStatusKind, WasmChannelStatusKind>>,
  Holds<Same<SubscriptionUpdate['type'], WasmSubscriptionUpdate['type'] | OwnUpdate>>,
  Holds<Same<Variant<SubscriptionUpdate, 'logs'>, Variant<WasmSubscriptionUpdate, 'logs'>>>,
  Holds<Same<Variant<SubscriptionUpdate, 'status'>, Variant<WasmSubscriptionUpdate, 'status'>>>,
  Holds<Same<Variant<SubscriptionUpdate, 'gap'>, Variant<WasmSubscriptionUpdate, 'gap'>>>,
  Holds<Same<Omit<Diagnostic, 'kind'>, Omit<WasmDiagnostic, 'kind'>>>,
  Holds<Same<Diagnostic['kind'], WasmDiagnostic['kind'] | OwnDiagnostic>>,
  Holds<Same<ClientStats, WasmClientStats>>,
  Holds<Same<ChannelChangeStats, WasmChannelChangeStats>>,
  Holds<Same<ChannelChangeMode, WasmChannelChangeMode>>,
  Holds<Same<ChannelChangeFallback, WasmChannelChangeFallback>>,
  // Every wasm client option is tuning, or a connection option of LogsClientOptions.
  Holds<Same<keyof WasmClientOptions, keyof ClientTuning | ConnectionOptions>>,
  Holds<Same<Omit<ClientTuning, 'onDiagnostic'>, Omit<Pick<WasmClientOptions, keyof ClientTuning>, 'onDiagnostic'>>>,
  // `onDiagnostic` also hears this package's own diagnostics: it takes the
  // wider Diagnostic, so it is passed to the wasm client as it is.
  Holds<Same<Parameters<NonNullable<WasmClientOptions['onDiagnostic']>>, [WasmDiagnostic]>>,
  Holds<Same<Parameters<NonNullable<ClientTuning['onDiagnostic']>>, [Diagnostic]>>,
  Holds<Extends<NonNullable<ClientTuning['onDiagnostic']>, NonNullable<WasmClientOptions['onDiagnostic']>>>,
  Holds<Same<Pick<LogsClientOptions, 'withCredentials'>, Pick<WasmClientOptions, 'withCredentials'>>>,
  Holds<Same<SubscribeOptions<unknown>, WasmSubscribeOptions>>,
];
