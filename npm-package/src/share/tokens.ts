// The owner's token requests: a worker cannot call a page's token getter,
// so the owner asks its tabs, one at a time, and takes the first answer; a
// tab that does not answer in time is passed over for the next.

/** One tab that may be asked: still there?, and how to ask it (`req` names the request). */
export interface TokenSource {
  present(): boolean;
  ask(req: number): void;
}

interface Wait {
  resolve(token: string | null): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class TokenRequests {
  private readonly waits = new Map<number, Wait>();
  private next = 1;

  constructor(private readonly timeoutMs: number) {}

  /** Asks each source in turn; the first answer wins, an error answer rejects. */
  async ask(sources: readonly TokenSource[]): Promise<string | null> {
    for (const source of sources) {
      if (!source.present()) continue;
      const req = this.next++;
      const answer = new Promise<string | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waits.delete(req);
          reject(new Error('timeout'));
        }, this.timeoutMs);
        this.waits.set(req, { resolve, reject, timer });
      });
      source.ask(req);
      try {
        return await answer;
      } catch (error) {
        // That tab is gone or hung: the next one.
        if (!(error instanceof Error) || error.message !== 'timeout') throw error;
      }
    }
    throw new Error('no tab answered the token request');
  }

  /** A tab's answer to request `req` (late or unknown ones are ignored). */
  answer(req: number, token: string | null | undefined, error: string | undefined): void {
    const wait = this.waits.get(req);
    if (wait === undefined) return;
    this.waits.delete(req);
    clearTimeout(wait.timer);
    if (error !== undefined) wait.reject(new Error(error));
    else wait.resolve(token ?? null);
  }

  /** The owner closes: every request waiting fails. */
  close(): void {
    for (const wait of this.waits.values()) {
      clearTimeout(wait.timer);
      wait.reject(new Error('the shared connection closed'));
    }
    this.waits.clear();
  }
}
