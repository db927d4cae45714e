// The demo's scenarios, played through the real publisher SDK
// (@datashop/logs-sse-publisher), one publisher per service:
//
//   pipeline — an ETL workflow (datashop-indata) runs extract/transform/load;
//              its load step triggers a FAAS workflow (datashop-faas) that
//              calls functions (datashop-faas-function). Every log carries
//              the run's ids, so one run can be followed across services.
//   burst    — a function that logs at a high rate (1,000 logs/s by
//              default) for a while, to watch the pages keep up.
//
// Every logData is stamped with `publishedAt` (ms since the epoch, sub-ms),
// which the app uses to measure publish → on-screen latency.

export const WORKSPACE = 'ws-demo';

/** The two pipelines the loop alternates between, and what each one calls. */
export const PIPELINES = [
  { workflow: 'wf-daily-sales', flow: 'flow-enrich-orders', rows: 12480, functions: ['fn-geocode', 'fn-fraud-score'] },
  { workflow: 'wf-customer-sync', flow: 'flow-customer-360', rows: 3210, functions: ['fn-merge-profiles'] },
];

export const BURST_FUNCTION = 'fn-clickstream-parser';

const now = () => performance.timeOrigin + performance.now();
const pad = (n, width = 4) => String(n).padStart(width, '0');
const fmt = (n) => n.toLocaleString('en-US');

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A logger bound to one resource: `log(level, message, extra)`. */
function logger(publish, workspace, resource, ids) {
  return (level, message, extra = {}) => {
    publish(workspace, resource, { timestamp: Date.now(), level, message, ...ids, ...extra, publishedAt: now() });
  };
}

/**
 * One pipeline run across the three services. `pubs` holds the SDK
 * publishers `{ etl, faas, function }`; `n` numbers the run; `pace`
 * scales the pauses (1 = real-time demo pacing, 0 = as fast as possible).
 */
export async function runPipeline(pubs, { workspace = WORKSPACE, n, pipeline = PIPELINES[0], pace = 1, signal } = {}) {
  const wait = (ms) => sleep(ms * pace * (0.7 + Math.random() * 0.6), signal);
  const run = `run-${pad(n)}`;
  const trace = `trace-${Math.random().toString(16).slice(2, 10)}`;
  const etlExec = `etl-${run}`;
  const flowExec = `flow-${run}`;
  const etl = logger((ws, id, data) => pubs.etl.publishWorkflowLog(ws, id, data), workspace, pipeline.workflow, {
    execution_id: etlExec, run_id: run, trace_id: trace,
  });
  const flow = logger((ws, id, data) => pubs.faas.publishWorkflowLog(ws, id, data), workspace, pipeline.flow, {
    execution_id: flowExec, run_id: run, trace_id: trace, triggered_by: `etl/${pipeline.workflow}/${etlExec}`,
  });
  const started = Date.now();
  const rows = pipeline.rows + Math.floor(Math.random() * 400);
  const skipped = 1 + Math.floor(Math.random() * 5);

  etl('info', `Run ${etlExec} started (trigger: schedule)`, { stage: 'start' });
  etl('debug', 'Loaded pipeline definition v14: extract → transform → load', { stage: 'start' });
  await wait(500);
  etl('info', `extract: reading ${pipeline.workflow === 'wf-daily-sales' ? 'orders' : 'customers'} from postgres://sales-db (since last watermark)`, { stage: 'extract' });
  const batches = 4;
  for (let b = 1; b <= batches; b += 1) {
    await wait(300);
    etl('debug', `extract: batch ${b}/${batches} fetched (${fmt(Math.round(rows / batches))} rows)`, { stage: 'extract' });
  }
  etl('info', `extract: ${fmt(rows)} rows in ${(0.9 + Math.random()).toFixed(2)} s`, { stage: 'extract', rows });
  await wait(400);
  etl('info', 'transform: normalising currencies and time zones', { stage: 'transform' });
  await wait(400);
  etl('warn', `transform: ${skipped} rows without customer_id skipped`, { stage: 'transform', skipped });
  etl('info', `transform: ${fmt(rows - skipped)} rows ready`, { stage: 'transform' });
  await wait(300);
  etl('info', `load: triggering FAAS workflow ${pipeline.flow} (${flowExec})`, { stage: 'load' });
  await pubs.etl.flush(2000);

  // The FAAS workflow, triggered by the ETL run.
  await wait(250);
  const flowStarted = Date.now();
  flow('info', `Workflow ${flowExec} started by etl/${pipeline.workflow} ${etlExec}`);
  flow('trace', 'scheduler: lease acquired on worker faas-worker-2');
  const steps = pipeline.functions.length + 1;
  for (const [i, fn] of pipeline.functions.entries()) {
    const exec = `exec-${fn.replace(/^fn-/, '')}-${pad(n)}`;
    flow('info', `step ${i + 1}/${steps} ${fn}: invoking (execution ${exec})`, { step: i + 1, function_id: fn, function_execution: exec });
    await pubs.faas.flush(2000);
    const stepStarted = Date.now();
    await runFunction(pubs, { workspace, fn, exec, run, trace, rows: rows - skipped, wait });
    flow('info', `step ${i + 1}/${steps} ${fn}: done in ${((Date.now() - stepStarted) / 1000).toFixed(1)} s`, { step: i + 1 });
    flow('trace', 'scheduler: heartbeat');
  }
  const flagged = 5 + Math.floor(Math.random() * 20);
  flow('info', `step ${steps}/${steps} notify: ${flagged} records sent to the review queue`, { step: steps });
  await wait(200);
  flow('info', `Workflow ${flowExec} succeeded in ${((Date.now() - flowStarted) / 1000).toFixed(1)} s`);
  await pubs.faas.flush(2000);

  await wait(300);
  etl('info', `load: FAAS workflow ${flowExec} succeeded`, { stage: 'load' });
  etl('info', `load: writing ${fmt(rows - skipped)} rows to warehouse.${pipeline.workflow.replace(/^wf-/, '').replace(/-/g, '_')}`, { stage: 'load' });
  await wait(600);
  etl('info', `Run ${etlExec} finished in ${((Date.now() - started) / 1000).toFixed(1)} s`, { stage: 'done', rows: rows - skipped });
  return { run, etlExec, flowExec };
}

/** One function execution called by the FAAS workflow. */
async function runFunction(pubs, { workspace, fn, exec, run, trace, rows, wait }) {
  const log = logger((ws, id, data) => pubs.function.publishFunctionLog(ws, id, data), workspace, fn, {
    execution_id: exec, run_id: run, trace_id: trace,
  });
  const cold = Math.random() < 0.4;
  log('info', cold ? `cold start in ${120 + Math.floor(Math.random() * 200)} ms (python3.12, 512 MB)` : 'warm start (python3.12, 512 MB)');
  log('trace', 'runtime: environment loaded');
  await wait(250);
  if (fn === 'fn-geocode') {
    const batches = 5;
    log('info', `geocoding ${fmt(rows)} addresses in ${batches} batches`);
    for (let b = 1; b <= batches; b += 1) {
      await wait(280);
      log('debug', `batch ${b}/${batches}: ${fmt(Math.round(rows / batches))} addresses resolved`);
      if (b === 3 && Math.random() < 0.5) log('warn', 'provider rate limit reached, backing off 200 ms');
    }
    const unresolved = Math.floor(Math.random() * 9);
    log('info', `done: ${fmt(rows - unresolved)} resolved, ${unresolved} fell back to postcode centroids`);
  } else if (fn === 'fn-fraud-score') {
    log('info', 'loading model fraud-gbm v3.2 (41 MB)');
    await wait(500);
    if (Math.random() < 0.5) {
      log('error', 'feature store timeout after 2,000 ms (attempt 1/3)');
      await wait(300);
      log('info', 'retrying feature fetch (attempt 2/3)');
    }
    await wait(400);
    log('info', `scored ${fmt(rows)} orders; ${5 + Math.floor(Math.random() * 20)} above threshold 0.92`);
  } else {
    log('info', `merging ${fmt(rows)} profiles by email and phone`);
    await wait(600);
    log('debug', `${Math.floor(rows * 0.08)} duplicates found`);
    await wait(300);
    log('info', 'profiles merged');
  }
  log('info', `execution ${exec} finished`, { status: 'succeeded' });
  // The function's lines reach the gateway before the workflow moves on,
  // so the all-services timeline reads in causal order.
  await pubs.function.flush(2000);
}

const PAGES = ['/', '/products/4711', '/products/1187', '/cart', '/checkout', '/search?q=boots', '/account/orders'];

/**
 * A function that logs `rate` lines per second for `seconds`: a clickstream
 * parser working through a backlog. `onProgress(published)` is called as it
 * goes. Resolves with the number of logs published.
 */
export async function runBurst(pub, { workspace = WORKSPACE, fn = BURST_FUNCTION, n = 1, rate = 1000, seconds = 10, signal, onProgress } = {}) {
  const exec = `exec-clickstream-${pad(n)}`;
  const log = logger((ws, id, data) => pub.publishFunctionLog(ws, id, data), workspace, fn, { execution_id: exec });
  const target = Math.round(rate * seconds);
  log('info', `execution ${exec}: parsing a backlog of ${fmt(target)} events at ${fmt(rate)}/s`);
  const started = performance.now();
  let published = 0;
  while (published < target && !signal?.aborted) {
    const due = Math.min(target, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; published < due; published += 1) {
      const r = Math.random();
      const event = 100000 + published;
      const session = `s-${((published * 2654435761) >>> 0).toString(16).slice(0, 6)}`;
      if (r < 0.001) log('error', `event #${event}: schema violation (field "ts" missing), dropped`, { event });
      else if (r < 0.006) log('warn', `event #${event}: malformed user agent, kept raw`, { event });
      else if (r < 0.02) log('debug', `event #${event}: session ${session} resumed from cache`, { event });
      else log('info', `event #${event} session=${session} page=${PAGES[published % PAGES.length]} took ${1 + (published % 17)} ms`, { event });
    }
    onProgress?.(published);
    await sleep(20, signal);
  }
  log('info', `execution ${exec} finished: ${fmt(published)} events in ${((performance.now() - started) / 1000).toFixed(1)} s`, { status: 'succeeded' });
  onProgress?.(published);
  return published;
}
