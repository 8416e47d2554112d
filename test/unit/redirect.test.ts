import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { playRedirectOf, redirectOf } from '../../sdk/redirect.ts';

const CURRENT = 'rtmfp://origin.example:1935/live/room?token=1';

describe('where a refused play or connect sends the client', () => {
  test('a Play.Failed with ex.redirect plays on that server, with the same app, path and query', () => {
    const info = {
      code: 'NetStream.Play.Failed',
      ex: { code: 302, redirect: 'rtmfp://edge.example:1936/other' },
    };
    assert.equal(playRedirectOf(info, CURRENT), 'rtmfp://edge.example:1936/live/room?token=1');
  });

  test('a Play.Failed naming an rtmfp:// URL only in its description (Cumulus apps) plays there', () => {
    const info = {
      code: 'NetStream.Play.Failed',
      description: 'full here, go to rtmfp://[::1]:1937/x please',
    };
    assert.equal(playRedirectOf(info, CURRENT), 'rtmfp://[::1]:1937/live/room?token=1');
  });

  test('ex.redirect wins over a URL in the description', () => {
    const info = {
      description: 'rtmfp://described.example/x',
      ex: { redirect: 'named.example:1935' },
    };
    assert.equal(playRedirectOf(info, CURRENT), 'rtmfp://named.example:1935/live/room?token=1');
  });

  test('a Play.Failed naming no server, or a description with a bare address, is not a redirect', () => {
    assert.equal(playRedirectOf({ description: 'no such stream' }, CURRENT), undefined);
    assert.equal(playRedirectOf({ description: '127.0.0.1:1936' }, CURRENT), undefined);
    assert.equal(playRedirectOf('moved', CURRENT), undefined);
  });

  test('a connect redirect needs ex.code 302 and an rtmfp:// URL', () => {
    assert.equal(
      redirectOf({ ex: { code: 302, redirect: 'rtmfp://edge.example/live' } }),
      'rtmfp://edge.example/live',
    );
    assert.equal(redirectOf({ ex: { code: 301, redirect: 'rtmfp://edge.example/live' } }), undefined);
    assert.equal(redirectOf({ ex: { code: 302, redirect: 'edge.example:1935' } }), undefined);
  });
});
