// Coalescing work to animation frames: however often logs arrive, each task
// (one per hook) runs at most once per frame, and all due tasks run in the
// same callback so React renders them in one batch.

export type FrameRequester = (callback: () => void) => void;

export class FrameBatcher {
  private readonly pending = new Set<() => void>();
  private scheduled = false;

  /** `request` defers to the next frame; read lazily so it works after SSR. */
  constructor(private readonly request: () => FrameRequester) {}

  /** Runs `task` in the next frame, once, however often it is scheduled before. */
  schedule(task: () => void): void {
    this.pending.add(task);
    if (this.scheduled) return;
    this.scheduled = true;
    this.request()(this.run);
  }

  cancel(task: () => void): void {
    this.pending.delete(task);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const tasks = [...this.pending];
    this.pending.clear();
    for (const task of tasks) {
      try {
        task();
      } catch (error) {
        // One failing task must not starve the others; report it like an
        // uncaught error instead.
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  };
}

/** `requestAnimationFrame`, or a 16 ms timer where there is none (workers, tests). */
export function animationFrame(): FrameRequester {
  const raf = (globalThis as { requestAnimationFrame?: (cb: () => void) => number }).requestAnimationFrame;
  if (typeof raf === 'function') return (callback) => raf.call(globalThis, callback);
  return (callback) => {
    setTimeout(callback, 16);
  };
}

/** The batcher all hooks of this copy of the package share. */
export const frames = new FrameBatcher(animationFrame);
