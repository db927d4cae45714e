import { describe, expect, test, vi } from 'vitest';
import { FrameBatcher } from '../../src/frame.js';
import { manualFrames } from './fake-client.js';

describe('FrameBatcher', () => {
  test('a task scheduled many times before a frame runs once in it', () => {
    const frames = manualFrames();
    const batcher = new FrameBatcher(frames.request);
    const task = vi.fn();
    for (let i = 0; i < 1000; i += 1) batcher.schedule(task);
    expect(frames.pending()).toBe(1);
    expect(task).not.toHaveBeenCalled();
    frames.run();
    expect(task).toHaveBeenCalledTimes(1);
    batcher.schedule(task);
    frames.run();
    expect(task).toHaveBeenCalledTimes(2);
  });

  test('all due tasks share one frame; a cancelled task does not run', () => {
    const frames = manualFrames();
    const batcher = new FrameBatcher(frames.request);
    const a = vi.fn();
    const b = vi.fn();
    batcher.schedule(a);
    batcher.schedule(b);
    batcher.cancel(b);
    expect(frames.pending()).toBe(1);
    frames.run();
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).not.toHaveBeenCalled();
  });

  test('a throwing task does not stop the others', () => {
    vi.useFakeTimers();
    try {
      const frames = manualFrames();
      const batcher = new FrameBatcher(frames.request);
      const after = vi.fn();
      batcher.schedule(() => {
        throw new Error('boom');
      });
      batcher.schedule(after);
      frames.run();
      expect(after).toHaveBeenCalledTimes(1);
      expect(() => vi.runAllTimers()).toThrow('boom');
    } finally {
      vi.useRealTimers();
    }
  });
});
