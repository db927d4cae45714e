import { describe, expect, test } from 'vitest';
import { Inbox, unstamped } from '../../src/share/messages.js';
import type { OwnerMessage } from '../../src/share/messages.js';

// The numbering of what an owner sends a joined tab (messages.ts `Stamp`):
// a BroadcastChannel may drop messages, and a tab that misses one must join
// again (and reopen from its cursors) rather than go on with a hole.
describe('Inbox', () => {
  const ping = (j: number | undefined, n: number | undefined): OwnerMessage => ({ t: 'dropped', tab: 't', ...(j === undefined ? {} : { j }), ...(n === undefined ? {} : { n }) });

  test('takes the messages of the current join in order, and says when one is missing', () => {
    const inbox = new Inbox();
    const j = inbox.join();
    expect([1, 2, 3].map((n) => inbox.accept(ping(j, n)))).toEqual(['ok', 'ok', 'ok']);
    expect(inbox.accept(ping(j, 5))).toBe('gap');
  });

  test('after a new join, messages numbered for the earlier one are stale and the count starts again', () => {
    const inbox = new Inbox();
    const first = inbox.join();
    expect(inbox.accept(ping(first, 1))).toBe('ok');
    const second = inbox.join();
    expect(inbox.accept(ping(first, 2))).toBe('stale');
    expect(inbox.accept(ping(second, 1))).toBe('ok');
    expect(inbox.accept(ping(second, 3))).toBe('gap');
  });

  test('unstamped messages (an owner that does not know the tab) are taken, and unstamped() strips a stamp', () => {
    const inbox = new Inbox();
    inbox.join();
    expect(inbox.accept(ping(undefined, undefined))).toBe('ok');
    expect(unstamped(ping(4, 9))).toEqual({ t: 'dropped', tab: 't' });
  });
});
