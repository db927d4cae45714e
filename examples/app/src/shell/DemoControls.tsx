// DemoControls owns the buttons that ask the demo publisher (a separate
// process, see examples/publisher) to play a scenario now, and what it says
// it is doing. Without a running publisher it says so and stays out of the way.
import { useEffect, useState } from 'react';
import { controlUrl } from '../scenario';

interface PublisherStatus {
  pipeline: { running: boolean; runs: number; current: string | null };
  burst: { running: boolean; published: number; target: number; rate: number };
  published: number;
}

async function call(path: string, body?: unknown): Promise<Response> {
  return fetch(`${controlUrl()}${path}`, body === undefined
    ? { method: 'GET' }
    : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

export function DemoControls() {
  const [status, setStatus] = useState<PublisherStatus | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  // A note stays a few seconds.
  useEffect(() => {
    if (message === null) return;
    const timer = setTimeout(() => setMessage(null), 5000);
    return () => clearTimeout(timer);
  }, [message]);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      let next = 15_000;
      try {
        const response = await call('/status');
        if (!stopped) setStatus(response.ok ? ((await response.json()) as PublisherStatus) : null);
        next = 1_000;
      } catch {
        if (!stopped) setStatus(null);
      }
      if (!stopped) timer = setTimeout(poll, next);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);

  const run = async (path: string, body: unknown) => {
    try {
      const response = await call(path, body);
      const answer = (await response.json()) as { message?: string; error?: string };
      setMessage(answer.message ?? answer.error ?? null);
    } catch {
      setMessage('the demo publisher did not answer');
    }
  };

  if (status === null) {
    return (
      <div className="controls controls-off" data-testid="demo-controls" data-online="false">
        Demo publisher offline
      </div>
    );
  }
  const burst = status.burst;
  return (
    <div className="controls" data-testid="demo-controls" data-online="true">
      <button type="button" onClick={() => void run('/scenarios/pipeline', {})} disabled={status.pipeline.running} data-testid="run-pipeline">
        {status.pipeline.running ? `Running ${status.pipeline.current ?? ''}` : 'Run pipeline'}
      </button>
      <button type="button" onClick={() => void run('/scenarios/burst', { rate: 1000, seconds: 10 })} disabled={burst.running} data-testid="run-burst">
        {burst.running
          ? `Burst ${Math.round((100 * burst.published) / Math.max(1, burst.target))} %`
          : 'Log burst · 1,000/s × 10 s'}
      </button>
      {message !== null && <span className="controls-note">{message}</span>}
    </div>
  );
}
