// What the owner reads from the real stream and from its tabs: the channel
// of a log event, the protocol's covering rule, and a tab's control body.
// Pure functions, no state.

/** The `channel` of a log event's JSON (the gateway writes it first; channel names need no escapes). */
export function logChannel(data: string): string | null {
  const key = '"channel":"';
  const at = data.indexOf(key);
  if (at < 0) return null;
  const end = data.indexOf('"', at + key.length);
  return end < 0 ? null : data.slice(at + key.length, end);
}

/** The routing rule of the protocol: a channel covers itself, a service-level one its resources. */
export function covers(held: string, published: string): boolean {
  return held === published || (published.startsWith(held + ':') && held.split(':').length === 3);
}

export interface Change {
  add: { channel: string; since?: string }[];
  remove: string[];
}

/** A tab's control body (written by its own wasm client), checked: null when it is not one. */
export function parseChange(body: string): Change | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { add = [], remove = [] } = value as { add?: unknown; remove?: unknown };
  if (!Array.isArray(add) || !Array.isArray(remove)) return null;
  const change: Change = { add: [], remove: [] };
  for (const item of add) {
    if (typeof item !== 'object' || item === null) return null;
    const { channel, since } = item as { channel?: unknown; since?: unknown };
    if (typeof channel !== 'string' || (since !== undefined && typeof since !== 'string')) return null;
    change.add.push(since === undefined ? { channel } : { channel, since });
  }
  for (const channel of remove) {
    if (typeof channel !== 'string') return null;
    change.remove.push(channel);
  }
  return change;
}
