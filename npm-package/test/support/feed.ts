// A continuous publisher for the randomised tests: publishes to a few
// resource channels of one workspace, one request per service at a time
// (so the gateway's order is the order of `g`, a number counted across all
// of them), and remembers each log's channel and when its request started.
// It answers which logs a channel (resource or service-level) must carry,
// in publish order.
import { publishItems } from './gateway.js';

export interface Resource {
  service: string;
  workspace_id: string;
  workflow_id: string;
}

export interface Published {
  /** Publish order across the feed. */
  g: number;
  /** The resource channel it went to. */
  channel: string;
  /** When its publish request started (ms since the epoch). */
  sentAt: number;
}

export const resourceChannel = (r: Resource): string => `logs:${r.service}:${r.workspace_id}:${r.workflow_id}`;

/** Whether `channel` (resource or service-level) carries logs of `resource` (a resource channel). */
export function covers(channel: string, resource: string): boolean {
  return channel === resource || resource.startsWith(`${channel}:`);
}

export class Feed {
  readonly published: Published[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private g = 0;

  /** Every `everyMs`, one log per resource (one request per service). */
  constructor(
    private readonly gateway: string,
    private readonly resources: Resource[],
    private readonly everyMs: number,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops publishing; resolves once the last request was answered. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** The `g` of every log `channel` must carry, in publish order. */
  expected(channel: string): Published[] {
    return this.published.filter((p) => covers(channel, p.channel));
  }

  private async run(): Promise<void> {
    const services = [...new Set(this.resources.map((r) => r.service))];
    while (this.running) {
      const tick = Date.now();
      for (const service of services) {
        const sentAt = Date.now();
        const items = this.resources
          .filter((r) => r.service === service)
          .map((r) => {
            this.g += 1;
            this.published.push({ g: this.g, channel: resourceChannel(r), sentAt });
            return { ...r, logData: { g: this.g } };
          });
        await publishItems(this.gateway, service, items);
      }
      const rest = this.everyMs - (Date.now() - tick);
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
    }
  }
}
