import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitUrl } from '../../runtime/host/app-url.ts';

test('the first path segment names the app, the rest is the path, the query the properties', () => {
  assert.deepEqual(splitUrl('rtmfp://node.example:1935/chat/room/7?x=1&y=two'), {
    app: 'chat',
    path: 'room/7',
    properties: { x: '1', y: 'two' },
  });
});

test('percent-escapes are decoded per segment, and a malformed one is kept as sent', () => {
  assert.deepEqual(splitUrl('rtmfp://h/caf%C3%A9/a%2Fb/100%/x'), {
    app: 'café',
    path: 'a/b/100%/x',
    properties: {},
  });
});

test('a URL without a path takes the fallback app (the connect command object names it)', () => {
  assert.deepEqual(splitUrl('rtmfp://h', 'chat'), { app: 'chat', path: '', properties: {} });
  assert.deepEqual(splitUrl('rtmfp://h/?k=v#frag', 'chat'), {
    app: 'chat',
    path: '',
    properties: { k: 'v' },
  });
  assert.deepEqual(splitUrl('not a url', 'chat'), { app: 'chat', path: '', properties: {} });
});
