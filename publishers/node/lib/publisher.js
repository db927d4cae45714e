'use strict';

/**
 * LogsSSEPublisher: publish logs to the gateway without ever blocking.
 *
 *   publishLog()  --validate, encode-->  BoundedQueue  --sender loop-->  POST /api/logs/publish
 *   (synchronous, microseconds)          (drop-oldest)   (batches by      (JSON array, retried
 *                                                         count, bytes,    with full jitter)
 *                                                         and time)
 *
 * The caller only validates, encodes and appends. Network I/O, waiting and
 * retrying happen in one asynchronous sender loop per publisher, so a slow or
 * dead gateway costs the service bounded memory, never latency or errors.
 * One batch in flight at a time keeps publish order. A batch that fails
 * transiently is kept aside and sent again, byte for byte and under the same
 * Idempotency-Key, before anything newer is taken from the queue: a retry of
 * a request that was stored but whose answer was lost is then recognised by
 * the gateway instead of storing its logs twice.
 */

const { newBatch } = require('./batch');
const { BoundedQueue } = require('./queue');
const { stampLog } = require('./stamp');
const transport = require('./transport');
const { validateSegment } = require('./validate');
const { ConfigError, GatewayError, LogTooLargeError, ValidationError } = require('./errors');

const VERSION = '0.1.0';

/** Defaults of every option; see the README for the bounds. */
const DEFAULTS = Object.freeze({
  maxQueueSize: 10000,
  maxBatchSize: 500,
  maxBatchBytes: 512 * 1024,
  flushIntervalMs: 100,
  requestTimeoutMs: 10000,
  retryBackoffMinMs: 100,
  retryBackoffMaxMs: 10000,
  maxRetryAfterMs: 300000,
  maxLogBytes: 64 * 1024,
  shutdownTimeoutMs: 5000,
});

/** [min, max] of every numeric option. */
const BOUNDS = Object.freeze({
  maxQueueSize: [1, 10000000],
  maxBatchSize: [1, 1000],
  maxBatchBytes: [1024, 16 * 1024 * 1024],
  flushIntervalMs: [0, 60000],
  requestTimeoutMs: [100, 600000],
  retryBackoffMinMs: [1, 60000],
  retryBackoffMaxMs: [1, 600000],
  maxRetryAfterMs: [0, 3600000],
  maxLogBytes: [1, 16 * 1024 * 1024],
  shutdownTimeoutMs: [0, 600000],
});

// Open publishers, for the beforeExit / exit hooks (installed once).
const live = new Set();
let hooksInstalled = false;

function installProcessHooks() {
  if (hooksInstalled || typeof process === 'undefined' || typeof process.on !== 'function') return;
  hooksInstalled = true;
  // beforeExit fires when the event loop has nothing left to do: the right
  // moment to deliver what is queued. close() keeps the process alive until
  // it resolves (at most shutdownTimeoutMs); it runs once per publisher, so a
  // dead gateway cannot make beforeExit loop. Publishers with nothing queued
  // stay open, in case the application schedules more work.
  process.on('beforeExit', () => {
    for (const publisher of live) {
      if (!publisher._drained()) publisher.close().catch(() => {});
    }
  });
  // exit (process.exit(), or after beforeExit) cannot wait for I/O; say what
  // is lost so that it is not a silent loss.
  process.on('exit', () => {
    for (const publisher of live) publisher._warnUndelivered();
  });
}

function checkOption(name, value) {
  const [min, max] = BOUNDS[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ConfigError(`${name} must be a finite number, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) {
    throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function publishUrl(gatewayUrl) {
  if (typeof gatewayUrl !== 'string' || gatewayUrl.trim() === '') {
    throw new ConfigError("gatewayUrl is required, e.g. 'http://logs-sse-gateway:3002'");
  }
  let url;
  try {
    url = new URL(gatewayUrl.trim());
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigError(`gatewayUrl must be an absolute http:// or https:// URL, got ${JSON.stringify(gatewayUrl)}`);
  }
  return `${gatewayUrl.trim().replace(/\/+$/, '')}/api/logs/publish`;
}

function sleep(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref?.();
  });
}

class LogsSSEPublisher {
  /**
   * @param {import('../types').PublisherOptions} options
   */
  constructor(options) {
    if (!options || typeof options !== 'object') {
      throw new ConfigError('options are required: { gatewayUrl, serviceToken, serviceName }');
    }
    const url = publishUrl(options.gatewayUrl);
    if (typeof options.serviceToken !== 'string' || options.serviceToken.trim() === '') {
      throw new ConfigError(
        'serviceToken is required: pass the token the gateway was started with for this service (--service-token NAME=TOKEN)',
      );
    }
    try {
      this.serviceName = validateSegment('serviceName', options.serviceName);
      this.functionServiceName = validateSegment('functionServiceName', options.functionServiceName ?? 'function');
    } catch (error) {
      throw new ConfigError(error.message);
    }
    if (options.addIdAndTimestamp != null && typeof options.addIdAndTimestamp !== 'boolean') {
      throw new ConfigError(`addIdAndTimestamp must be a boolean, got ${JSON.stringify(options.addIdAndTimestamp)}`);
    }
    /** @private */ this._stamp = options.addIdAndTimestamp !== false;
    const opts = {};
    for (const name of Object.keys(DEFAULTS)) {
      opts[name] = checkOption(name, options[name] ?? DEFAULTS[name]);
    }
    if (!Number.isInteger(opts.maxQueueSize) || !Number.isInteger(opts.maxBatchSize)) {
      throw new ConfigError('maxQueueSize and maxBatchSize must be integers');
    }
    if (opts.retryBackoffMaxMs < opts.retryBackoffMinMs) {
      throw new ConfigError(
        `retryBackoffMaxMs (${opts.retryBackoffMaxMs}) must be at least retryBackoffMinMs (${opts.retryBackoffMinMs})`,
      );
    }
    if (options.onError != null && typeof options.onError !== 'function') {
      throw new ConfigError('onError must be a function');
    }
    const logger = options.logger === undefined ? console : options.logger;
    if (logger !== null && (typeof logger.warn !== 'function' || typeof logger.error !== 'function')) {
      throw new ConfigError('logger must have warn() and error() methods, or be null');
    }
    /** @private */ this._opts = opts;
    /** @private */ this._onError = options.onError || null;
    /** @private */ this._logger = logger;
    /** @private */ this._queue = new BoundedQueue(opts.maxQueueSize);
    /** @private */ this._stop = new AbortController();
    /** @private */ this._target = {
      url,
      timeoutMs: opts.requestTimeoutMs,
      signal: this._stop.signal,
      headers: {
        authorization: `Bearer ${options.serviceToken.trim()}`,
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': `logs-sse-publisher-node/${VERSION}`,
      },
    };
    // The item prefix is the same for every log of a service; ids are
    // validated to need no JSON escaping. Function logs have their own
    // service (see publishFunctionLog).
    /** @private */ this._prefix = `{"service":"${this.serviceName}","workspace_id":"`;
    /** @private */ this._functionPrefix = `{"service":"${this.functionServiceName}","workspace_id":"`;
    /** @private */ this._state = {
      closed: false, // no new entries; the sender drains and stops
      stopped: false, // the sender must stop now
      sending: false,
      flushWaiters: 0,
      // The batch being sent, or waiting to be sent again after a transient
      // failure; it leaves only once answered for good (or at close()).
      batch: null,
      requesting: false, // a request of `batch` is on the wire
      batchBytes: opts.maxBatchBytes, // lowered after a 413
      failuresInARow: 0,
      timer: null,
      idleWaiters: new Set(),
      reported: new Set(),
      warnedFull: false,
      warnedClosed: false,
    };
    /** @private */ this._counters = {
      queued: 0,
      sent: 0,
      duplicates: 0,
      dropped: 0,
      failed: 0,
      requests: 0,
      retries: 0,
    };
    /** @private */ this._lastError = null;
    /** @private */ this._closing = null;
    live.add(this);
    installProcessHooks();
  }

  // ------------------------------------------------------------------ API

  /**
   * Queues a log for `logs:{service}:{workspaceId}:{resourceId}` (sent as
   * `resource_id`). Returns at once: `true` when queued, `false` when the
   * publisher is closed (counted as dropped). Throws for invalid ids,
   * non-JSON or oversized logData; never for gateway or network trouble.
   */
  publishLog(workspaceId, resourceId, logData) {
    return this._publish('resource_id', workspaceId, resourceId, logData);
  }

  /** Like publishLog, sent as `workflow_id` (ETL and FAAS workflows). */
  publishWorkflowLog(workspaceId, workflowId, logData) {
    return this._publish('workflow_id', workspaceId, workflowId, logData);
  }

  /**
   * Queues a log of a function execution for
   * `logs:{functionServiceName}:{workspaceId}:{functionId}` (sent as
   * `function_id`). Function logs belong to the function service (default
   * `function`) whatever this publisher's serviceName, so a FAAS backend
   * publishing with `serviceName: 'faas'` reaches pages subscribed with
   * `service: 'function'`; its token must be granted both services
   * (`--service-token faas+function=TOKEN`).
   */
  publishFunctionLog(workspaceId, functionId, logData) {
    return this._publish('function_id', workspaceId, functionId, logData);
  }

  /**
   * Sends what is queued now and resolves `true` once everything queued has
   * been delivered or given up, or `false` after `timeoutMs` (the entries
   * stay queued and keep being retried).
   */
  flush(timeoutMs = this._opts.shutdownTimeoutMs) {
    const state = this._state;
    if (this._drained()) return Promise.resolve(true);
    if (state.stopped) return Promise.resolve(false);
    state.flushWaiters += 1;
    return new Promise((resolve) => {
      let timer = null;
      const done = (drained) => {
        if (timer) clearTimeout(timer);
        state.idleWaiters.delete(done);
        state.flushWaiters -= 1;
        resolve(drained);
      };
      state.idleWaiters.add(done);
      // Ref'd on purpose: whoever awaits flush() expects an answer, so the
      // process stays alive until the queue drains or the timeout passes.
      timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
      this._schedule();
    });
  }

  /**
   * Delivers what is queued (up to `timeoutMs`, default shutdownTimeoutMs),
   * then stops. Entries still queued at the timeout are counted as dropped;
   * later publish calls are dropped and counted. Safe to call more than
   * once; also called on process `beforeExit`. Resolves `true` if
   * everything was delivered.
   */
  close(timeoutMs = this._opts.shutdownTimeoutMs) {
    if (!this._closing) {
      this._state.closed = true;
      this._closing = this._shutdown(timeoutMs);
    }
    return this._closing;
  }

  /** A snapshot of the counters; cheap enough for a health endpoint. */
  stats() {
    return {
      ...this._counters,
      queueSize: this._queue.length,
      inFlight: this._inFlight(),
      lastError: this._lastError,
    };
  }

  // ------------------------------------------------------ caller side

  /** @private */
  _publish(field, workspaceId, resourceId, logData) {
    const ws = validateSegment('workspace_id', workspaceId);
    const rid = validateSegment(field, resourceId);
    if (logData === undefined) {
      throw new TypeError('logData is required (any JSON-serialisable value)');
    }
    const data = JSON.stringify(this._stamp ? stampLog(logData) : logData);
    if (typeof data !== 'string') {
      throw new TypeError(`logData must be JSON-serialisable, got ${typeof logData}`);
    }
    const dataBytes = Buffer.byteLength(data, 'utf8');
    if (dataBytes > this._opts.maxLogBytes) {
      throw new LogTooLargeError(
        `logData is ${dataBytes} bytes once encoded as JSON; the limit is ${this._opts.maxLogBytes} bytes per log`,
      );
    }
    const prefix = field === 'function_id' ? this._functionPrefix : this._prefix;
    const head = `${prefix}${ws}","${field}":"${rid}","logData":`;
    const body = `${head}${data}}`;
    return this._enqueue({ body, bytes: head.length + dataBytes + 1, queuedAt: performance.now() });
  }

  /** @private */
  _enqueue(entry) {
    const state = this._state;
    if (state.closed) {
      this._counters.dropped += 1;
      if (!state.warnedClosed) {
        state.warnedClosed = true;
        this._warn(`publisher '${this.serviceName}' is closed; logs published after close() are dropped`);
      }
      return false;
    }
    const dropped = this._queue.push(entry);
    this._counters.queued += 1;
    if (dropped) {
      this._counters.dropped += dropped;
      if (!state.warnedFull) {
        state.warnedFull = true;
        this._warn(
          `publisher '${this.serviceName}': queue full (${this._queue.capacity} entries), dropping the oldest entries ` +
            `(counted in stats().dropped); last error: ${this._lastError}`,
        );
      }
    }
    // Cheap unless the schedule changes: the first entry arms the timer, a
    // full batch starts sending.
    const size = this._queue.length;
    if (size === 1 || size >= this._opts.maxBatchSize) this._schedule();
    return true;
  }

  /** @private */
  _drained() {
    return this._queue.length === 0 && this._state.batch === null;
  }

  /** @private */
  _inFlight() {
    return this._state.batch ? this._state.batch.entries.length : 0;
  }

  /** @private */
  _ready() {
    const state = this._state;
    if (state.batch) return true; // a retry waits for nothing but its backoff
    const oldest = this._queue.oldest();
    if (!oldest) return false;
    return (
      this._queue.length >= this._opts.maxBatchSize ||
      state.flushWaiters > 0 ||
      state.closed ||
      performance.now() - oldest.queuedAt >= this._opts.flushIntervalMs
    );
  }

  /**
   * Starts the sender if a batch is ready, else arms the linger timer for
   * the moment the oldest entry has waited flushIntervalMs.
   * @private
   */
  _schedule() {
    const state = this._state;
    if (state.sending || state.stopped || (this._queue.length === 0 && !state.batch)) return;
    if (this._ready()) {
      if (state.timer) {
        clearTimeout(state.timer);
        state.timer = null;
      }
      state.sending = true;
      // Never on the caller's stack: building a batch and starting a request
      // (the first fetch() even loads its HTTP client) belong to a later tick.
      setImmediate(() => {
        this._sendLoop().catch((error) => {
          this._error(`publisher '${this.serviceName}': unexpected sender error: ${error && error.stack}`);
        });
      });
      return;
    }
    if (!state.timer) {
      const wait = Math.max(0, this._queue.oldest().queuedAt + this._opts.flushIntervalMs - performance.now());
      state.timer = setTimeout(() => {
        state.timer = null;
        this._schedule();
      }, Math.ceil(wait));
      // Unref'd: a publisher must not keep an otherwise finished process
      // alive; beforeExit delivers what the timer would have sent.
      state.timer.unref?.();
    }
  }

  // ------------------------------------------------------ sender side

  /** @private */
  async _sendLoop() {
    const state = this._state;
    try {
      while (!state.stopped && this._ready()) {
        // A batch kept for a retry goes first and as it was: merged with
        // newer logs it would be another request to the gateway.
        if (!state.batch) state.batch = newBatch(this._queue.take(this._opts.maxBatchSize, state.batchBytes));
        const batch = state.batch;
        try {
          await this._deliver(batch);
        } catch (error) {
          if (state.batch === batch) {
            state.batch = null;
            this._counters.failed += batch.entries.length;
          }
          this._error(`publisher '${this.serviceName}': unexpected error: ${error && error.stack}`);
        }
      }
    } finally {
      state.sending = false;
      if (this._drained() || state.stopped) this._notifyIdle();
      this._schedule();
    }
  }

  /**
   * Sends `batch` once and acts on the answer. Every outcome but a
   * transient failure settles the batch (state.batch = null).
   * @private
   */
  async _deliver(batch) {
    const state = this._state;
    state.requesting = true;
    let outcome;
    try {
      outcome = await transport.postBatch(this._target, batch);
    } finally {
      state.requesting = false;
    }
    this._counters.requests += 1;
    const entries = batch.entries;
    if (outcome.kind !== transport.RETRY) state.batch = null;
    switch (outcome.kind) {
      case transport.OK:
        this._recovered();
        this._countAccepted(entries.length, outcome);
        break;
      case transport.RETRY:
        await this._retryLater(batch, outcome);
        break;
      case transport.TOO_LARGE:
        if (state.stopped) {
          // close() gave up meanwhile: the queue is gone, so are these.
          this._counters.dropped += entries.length;
          break;
        }
        if (entries.length > 1) {
          // The gateway's body limit is lower than maxBatchBytes: send
          // smaller batches from now on, starting with this one. Nothing
          // was stored, so its entries go back to the queue and the smaller
          // batches get keys of their own.
          const size = entries.reduce((sum, entry) => sum + entry.bytes + 1, 2);
          state.batchBytes = Math.max(1, Math.floor(size / 2));
          this._counters.dropped += this._queue.pushFront(entries);
          break;
        }
      // falls through: a single entry the gateway will never take
      default:
        this._recovered();
        this._counters.failed += entries.length;
        this._report(outcome, entries.length);
    }
  }

  /** @private */
  _countAccepted(count, outcome) {
    const body = outcome.body || {};
    let accepted = body.accepted;
    if (!Number.isInteger(accepted) || accepted < 0 || accepted > count) {
      accepted = count; // a 2xx without the usual body: trust it
    }
    // Logs an earlier attempt of this batch had stored (its answer was
    // lost); a gateway without idempotency support sends no such field.
    const duplicates = body.duplicates;
    if (Number.isInteger(duplicates) && duplicates > 0) this._counters.duplicates += Math.min(duplicates, accepted);
    const rejected = count - accepted;
    this._counters.sent += accepted;
    this._counters.failed += rejected;
    if (rejected > 0) {
      const first = Array.isArray(body.errors) && body.errors[0] && typeof body.errors[0] === 'object' ? body.errors[0] : {};
      this._report(
        {
          status: Number(first.status) || outcome.status,
          code: String(first.code ?? 'rejected'),
          message: `item ${first.index ?? '?'} of a batch: ${first.message ?? ''}`,
        },
        rejected,
      );
    }
  }

  /**
   * Keeps `batch` (still state.batch) for the next round of the send loop,
   * after a full-jitter backoff.
   * @private
   */
  async _retryLater(batch, outcome) {
    const state = this._state;
    if (state.stopped) {
      // close() gave up while this request was on the wire.
      state.batch = null;
      this._counters.dropped += batch.entries.length;
      return;
    }
    this._counters.retries += 1;
    state.failuresInARow += 1;
    this._lastError = outcome.status
      ? `${outcome.status} ${outcome.code}: ${outcome.message}`
      : `network error: ${outcome.message}`;
    if (state.failuresInARow === 1) {
      this._warn(
        `publisher '${this.serviceName}': gateway unavailable (${this._lastError}); ` +
          `keeping ${this._queue.length + batch.entries.length} log(s) and retrying`,
      );
    }
    const cap = Math.min(
      this._opts.retryBackoffMaxMs,
      this._opts.retryBackoffMinMs * 2 ** Math.min(state.failuresInARow - 1, 30),
    );
    let delay = Math.random() * cap; // full jitter
    if (outcome.retryAfterMs != null) {
      delay = Math.max(delay, Math.min(outcome.retryAfterMs, this._opts.maxRetryAfterMs));
    }
    await Promise.race([sleep(delay), this._stopped()]);
  }

  /** @private */
  _stopped() {
    if (!this._stoppedPromise) {
      this._stoppedPromise = new Promise((resolve) => {
        if (this._stop.signal.aborted) resolve();
        else this._stop.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    return this._stoppedPromise;
  }

  /** @private */
  _recovered() {
    const failures = this._state.failuresInARow;
    this._state.failuresInARow = 0;
    if (failures > 0 && this._logger) {
      (this._logger.info || this._logger.warn).call(
        this._logger,
        `[logs-sse] publisher '${this.serviceName}': gateway reachable again after ${failures} failed attempt(s)`,
      );
    }
  }

  /**
   * A permanent failure: logged once per (status, code), handed to onError
   * every time.
   * @private
   */
  _report(outcome, count) {
    const error = new GatewayError(outcome.status, outcome.code, outcome.message, count);
    this._lastError = error.message;
    const key = `${outcome.status} ${outcome.code}`;
    if (!this._state.reported.has(key)) {
      this._state.reported.add(key);
      const hint =
        outcome.status === 401
          ? 'the gateway does not accept this serviceToken'
          : outcome.status === 403
            ? `this serviceToken is not granted the service of these logs ('${this.serviceName}'` +
              (this.functionServiceName === this.serviceName ? ')' : `, or '${this.functionServiceName}' for function logs)`)
            : 'these logs can never be accepted';
      this._error(
        `publisher '${this.serviceName}': ${error.message} (${hint}); ${count} log(s) dropped and counted as failed. ` +
          'Further failures like this one are counted in stats().failed without being logged again.',
      );
    }
    if (this._onError) {
      try {
        this._onError(error);
      } catch (callbackError) {
        this._error(`publisher '${this.serviceName}': onError threw: ${callbackError && callbackError.stack}`);
      }
    }
  }

  /** @private */
  _notifyIdle() {
    for (const done of [...this._state.idleWaiters]) done(this._drained());
  }

  /** @private */
  async _shutdown(timeoutMs) {
    const drained = await this.flush(timeoutMs);
    const state = this._state;
    state.stopped = true;
    if (state.timer) {
      clearTimeout(state.timer);
      state.timer = null;
    }
    this._stop.abort(new Error('publisher closed'));
    let leftover = this._queue.clear();
    // A batch waiting for its retry is given up here; one on the wire is
    // counted by the sender once the aborted request returns.
    if (state.batch && !state.requesting) {
      leftover += state.batch.entries.length;
      state.batch = null;
    }
    this._counters.dropped += leftover;
    live.delete(this);
    this._notifyIdle();
    if (leftover > 0) {
      this._warn(
        `publisher '${this.serviceName}' closed with ${leftover} log(s) undelivered after ${timeoutMs} ms; ` +
          `they were dropped (last error: ${this._lastError})`,
      );
    }
    return drained && leftover === 0;
  }

  /** Called on process exit: report entries that can no longer be sent. */
  _warnUndelivered() {
    const pending = this._queue.length + this._inFlight();
    if (pending > 0) {
      this._warn(`publisher '${this.serviceName}': process exiting with ${pending} log(s) undelivered; await close() before exit`);
    }
  }

  /** @private */
  _warn(message) {
    if (this._logger) this._logger.warn(`[logs-sse] ${message}`);
  }

  /** @private */
  _error(message) {
    if (this._logger) this._logger.error(`[logs-sse] ${message}`);
  }
}

module.exports = { LogsSSEPublisher, DEFAULTS, BOUNDS, VERSION, ValidationError };
