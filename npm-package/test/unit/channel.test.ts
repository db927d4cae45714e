import { describe, expect, test } from 'vitest';
import { channelFromOptions } from '../../src/channel.js';

describe('channelFromOptions', () => {
  test('builds resource and service-level channels from the design options', () => {
    expect(channelFromOptions({ service: 'etl', workspace_id: 'ws123', workflow_id: 'wf456' }).channel).toBe('logs:etl:ws123:wf456');
    expect(channelFromOptions({ service: 'function', workspace_id: 7, workflow_id: 9 }).channel).toBe('logs:function:7:9');
    expect(channelFromOptions({ service: 'etl', workspace_id: 'ws123' }).channel).toBe('logs:etl:ws123');
  });

  test('a full channel wins over the parts', () => {
    expect(channelFromOptions({ channel: 'logs:etl:ws1', service: 'faas', workspace_id: 'x', workflow_id: 'y' }).channel).toBe('logs:etl:ws1');
  });

  test('waits (no channel, no error) while ids are still missing', () => {
    for (const value of [undefined, null, '']) {
      expect(channelFromOptions({ service: 'etl', workspace_id: value })).toEqual({ channel: null, error: null });
      expect(channelFromOptions({ service: 'etl', workspace_id: 'ws', workflow_id: value })).toEqual({ channel: null, error: null });
    }
  });

  test('refuses ids that would change the channel shape, and missing service', () => {
    for (const bad of ['a:b', 'a,b', 'a b']) {
      const target = channelFromOptions({ service: 'etl', workspace_id: 'ws', workflow_id: bad });
      expect(target.channel).toBeNull();
      expect(target.error?.code).toBe('invalid_channel');
    }
    expect(channelFromOptions({ workspace_id: 'ws' }).error?.code).toBe('invalid_options');
  });
});
