// The SharedWorker that owns the browser's connections: one
// ConnectionOwner per gateway (resolved URL and credentials mode), serving
// every tab that loaded this same worker script. Each tab talks to it over
// its own MessagePort (see worker-link.ts).

import { ConnectionOwner } from './owner.js';
import { SHARE_PROTOCOL } from './messages.js';
import type { OwnerConfig, OwnerMessage, TabMessage } from './messages.js';

interface Envelope {
  readonly v: number;
  readonly key: string;
  readonly m: TabMessage;
}

const owners = new Map<string, ConnectionOwner>();

function ownerFor(key: string, config: OwnerConfig): ConnectionOwner {
  let owner = owners.get(key);
  if (owner === undefined) {
    const created: ConnectionOwner = new ConnectionOwner(config, () => {
      if (owners.get(key) === created) owners.delete(key);
      created.close();
    });
    owner = created;
    owners.set(key, owner);
  }
  return owner;
}

function connect(port: MessagePort): void {
  const send = (message: OwnerMessage): void => port.postMessage(message);
  port.onmessage = (event: MessageEvent<Envelope>) => {
    const { v, key, m } = event.data;
    if (v !== SHARE_PROTOCOL) return;
    const owner = m.t === 'join' ? ownerFor(key, m.config) : owners.get(key);
    if (owner !== undefined) owner.handle(m, send);
    else if (m.t !== 'leave') send({ t: 'dropped', tab: m.tab });
  };
  port.start();
}

const scope = globalThis as unknown as { onconnect: ((event: MessageEvent) => void) | null };
scope.onconnect = (event: MessageEvent) => {
  const port = event.ports[0];
  if (port !== undefined) connect(port);
};
