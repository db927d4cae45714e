'use strict';

/**
 * One HTTP request to `POST /api/logs/publish`, and what its answer means.
 *
 * Uses the global `fetch` (Node 18+), so the package has no runtime
 * dependency. Never throws: every outcome, a network error included, becomes
 * an Outcome the sender acts on.
 */

const OK = 'ok'; // 2xx: the batch was processed (items may still have been rejected)
const RETRY = 'retry'; // network error, timeout, 408, 429, 5xx: send again later
const AUTH = 'auth'; // 401 / 403: the token is wrong; retrying cannot help
const TOO_LARGE = 'too_large'; // 413: split the batch
const REJECTED = 'rejected'; // any other 4xx: the request itself is wrong

/**
 * @typedef {object} Outcome
 * @property {string} kind one of OK, RETRY, AUTH, TOO_LARGE, REJECTED
 * @property {number} status HTTP status, 0 when no answer arrived
 * @property {string} code the gateway's error code, if any
 * @property {string} message
 * @property {number | null} retryAfterMs from a Retry-After header
 * @property {any} body the parsed JSON answer, if it was an object
 */

/**
 * Milliseconds from a Retry-After header (delta-seconds or an HTTP date).
 * @param {string | null} value
 * @returns {number | null}
 */
function parseRetryAfter(value) {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const when = Date.parse(trimmed);
  if (Number.isNaN(when)) return null;
  return Math.max(0, when - Date.now());
}

function classify(status, headers, text) {
  let body = null;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed;
  } catch {
    // not JSON: keep the raw text as the message below
  }
  if (status >= 200 && status < 300) {
    return { kind: OK, status, code: '', message: '', retryAfterMs: null, body };
  }
  const error = body && typeof body.error === 'object' && body.error ? body.error : null;
  let code = error ? String(error.code ?? '') : '';
  let message = error ? String(error.message ?? '') : text.slice(0, 200);
  const first = body && Array.isArray(body.errors) ? body.errors[0] : null;
  if (error && first && typeof first === 'object') {
    // A batch whose every item failed ("all_rejected"): the first item's
    // reason says more than the summary.
    code = String(first.code ?? code);
    message = `${message}; item ${first.index ?? 0}: ${first.message ?? ''}`;
  }
  let kind;
  if (status === 401 || status === 403) kind = AUTH;
  // 413 for the body as a whole (not for one oversized item): a smaller
  // batch will pass.
  else if (status === 413 && !first) kind = TOO_LARGE;
  else if (status === 408 || status === 429 || status >= 500) kind = RETRY;
  else kind = REJECTED;
  return { kind, status, code, message, retryAfterMs: parseRetryAfter(headers.get('retry-after')), body };
}

/**
 * Posts one batch: its JSON array body, under its Idempotency-Key.
 *
 * @param {{ url: string, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal }} target
 * @param {import('./batch').Batch} batch
 * @returns {Promise<Outcome>}
 */
async function postBatch(target, batch) {
  const controller = new AbortController();
  const onStop = () => controller.abort(target.signal.reason);
  target.signal.addEventListener('abort', onStop, { once: true });
  // Unref'd: an in-flight request keeps the process alive through its
  // socket; the timeout alone must not.
  const timer = setTimeout(() => controller.abort(new Error('request timed out')), target.timeoutMs);
  timer.unref?.();
  try {
    const response = await fetch(target.url, {
      method: 'POST',
      headers: { ...target.headers, 'idempotency-key': batch.key },
      body: batch.body,
      signal: controller.signal,
    });
    const text = await response.text();
    return classify(response.status, response.headers, text);
  } catch (error) {
    const cause = error && error.cause ? error.cause : null;
    const detail = cause ? `${cause.code || cause.name || ''} ${cause.message || ''}`.trim() : '';
    const reason = controller.signal.aborted && controller.signal.reason instanceof Error
      ? controller.signal.reason.message
      : `${error && error.message ? error.message : error}${detail ? ` (${detail})` : ''}`;
    return { kind: RETRY, status: 0, code: 'network_error', message: reason, retryAfterMs: null, body: null };
  } finally {
    clearTimeout(timer);
    target.signal.removeEventListener('abort', onStop);
  }
}

module.exports = { OK, RETRY, AUTH, TOO_LARGE, REJECTED, parseRetryAfter, postBatch };
