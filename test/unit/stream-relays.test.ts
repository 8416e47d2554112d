import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseRelayedName,
  type RelayEnd,
  type RelayLinkView,
  relayedName,
  StreamRelays,
} from '../../runtime/relay/stream-relays.ts';
import type { AmfObject } from '../../runtime/rtmfp/amf-value.ts';
import type { TCClientConnection } from '../../runtime/rtmfp/tc-client.ts';
import type { TCClientStreamHandler } from '../../runtime/rtmfp/tc-client-stream.ts';
import { recordedPublication } from '../support/recording-player.ts';

/** A link whose NetConnection records what relays ask of it; `close` ends it. */
class FakeLink implements RelayLinkView {
  state = 'up';
  readonly ready = Promise.resolve();
  readonly played: string[] = [];
  readonly deleted: number[] = [];
  handler: TCClientStreamHandler | undefined;
  private readonly listeners = new Set<(e: Error) => void>();
  private nextId = 1;
  readonly tc = {
    createStream: (handler: TCClientStreamHandler, done: (s: unknown, info: unknown) => void) => {
      this.handler = handler;
      const streamId = this.nextId++;
      done({ streamId, play: (name: string) => this.played.push(name) }, streamId);
    },
    deleteStream: (stream: { streamId: number }) => this.deleted.push(stream.streamId),
  } as unknown as TCClientConnection;

  onClosed(listener: (e: Error) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.state = 'closed';
    for (const l of [...this.listeners]) l(new Error('link closed'));
  }

  status(code: string): void {
    this.handler?.status({ level: 'status', code, description: '' } as AmfObject);
  }
}

function setup() {
  const links = new Map<string, FakeLink>();
  const leases = new Map<string, number>();
  const ended: RelayEnd[] = [];
  const relays = new StreamRelays({
    links: {
      use: (node) => {
        if (node === 'dead') throw new Error('node dead is not live');
        let link = links.get(node);
        if (!link) {
          link = new FakeLink();
          links.set(node, link);
        }
        leases.set(node, (leases.get(node) ?? 0) + 1);
        return { link, release: () => leases.set(node, (leases.get(node) ?? 0) - 1) };
      },
    },
    now: () => 0,
    ended: (e) => ended.push(e),
  });
  return { relays, links, leases, ended };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('stream relays', () => {
  test('one relay per stream, playing app/name on its origin, however often it is asked', async () => {
    const { relays, links, leases } = setup();
    const { publication } = recordedPublication('cam', 3, 0);
    relays.start('app', 'cam', 'a', publication);
    relays.start('app', 'cam', 'a', publication);
    await settle();
    assert.deepEqual(links.get('a')?.played, ['app/cam']);
    assert.equal(leases.get('a'), 1);
    assert.equal(relays.stats().relays, 1);
    relays.stop('app', 'cam');
    assert.deepEqual(links.get('a')?.deleted, [1]);
    assert.equal(leases.get('a'), 0);
  });

  test("the origin's PublishNotify and UnpublishNotify start and stop the local publication", async () => {
    const { relays, links } = setup();
    const { publication, players } = recordedPublication('cam', 2, 0);
    relays.start('app', 'cam', 'a', publication);
    await settle();
    const link = links.get('a')!;
    link.handler?.media({ type: 'video', timestamp: 0, body: Buffer.from([0x17, 1, 0, 0, 0]) });
    assert.deepEqual(
      relays.stats().dropped,
      { 'not-live': 1 },
      'media before PublishNotify is dropped, counted',
    );
    link.status('NetStream.Play.PublishNotify');
    assert.equal(publication.publishing, true);
    // The origin's own play sequence: its |RtmpSampleAccess is not handed on (players here got theirs).
    link.handler?.media({
      type: 'data',
      timestamp: 0,
      body: Buffer.alloc(0),
      values: ['|RtmpSampleAccess', true, true],
    });
    link.handler?.media({ type: 'video', timestamp: 40, body: Buffer.from([0x17, 1, 0, 0, 0, 9]) });
    link.handler?.media({ type: 'audio', timestamp: 40, body: Buffer.from([0xaf, 1, 7]) });
    assert.equal(relays.stats().messages, 2);
    for (const p of players) {
      assert.deepEqual(p.got.video, ['170100000009']);
      assert.deepEqual(p.got.audio, ['af0107']);
      assert.equal(p.got.data.length, 1, 'only the local |RtmpSampleAccess');
    }
    link.status('NetStream.Play.UnpublishNotify');
    assert.equal(publication.publishing, false);
    for (const p of players) assert.equal(p.got.statuses.at(-1), 'NetStream.Play.UnpublishNotify');
  });

  test('a link that closes ends its relays: players hear UnpublishNotify, the owner hears why', async () => {
    const { relays, links, ended } = setup();
    const { publication, players } = recordedPublication('cam', 1, 0);
    relays.start('app', 'cam', 'a', publication);
    await settle();
    links.get('a')?.status('NetStream.Play.PublishNotify');
    links.get('a')?.close();
    assert.equal(players[0].got.statuses.at(-1), 'NetStream.Play.UnpublishNotify');
    assert.equal(relays.stats().relays, 0);
    assert.deepEqual(
      ended.map((e) => [e.app, e.name, e.origin, e.reason]),
      [['app', 'cam', 'a', 'link']],
    );
  });

  test('a play the origin refuses ends the relay; a relay to a node that cannot be linked throws', async () => {
    const { relays, links, ended } = setup();
    const { publication } = recordedPublication('cam', 1, 0);
    relays.start('app', 'cam', 'a', publication);
    await settle();
    links.get('a')?.status('NetStream.Play.Failed');
    assert.equal(ended[0]?.reason, 'refused');
    assert.equal(relays.stats().relays, 0);
    assert.throws(() => relays.start('app', 'cam', 'dead', publication), /not live/);
    assert.equal(relays.stats().relays, 0);
  });

  test('a new origin replaces the relay (the publisher moved)', async () => {
    const { relays, links, leases } = setup();
    const { publication } = recordedPublication('cam', 1, 0);
    relays.start('app', 'cam', 'a', publication);
    relays.start('app', 'cam', 'b', publication);
    await settle();
    assert.equal(leases.get('a'), 0);
    assert.equal(leases.get('b'), 1);
    assert.equal(relays.originOf('app', 'cam'), 'b');
    assert.deepEqual(links.get('b')?.played, ['app/cam']);
  });

  test('relayed names carry the app; a name without one is refused', () => {
    assert.equal(relayedName('app', 'live/cam?x=1'), 'app/live/cam?x=1');
    assert.deepEqual(parseRelayedName('app/live/cam'), { app: 'app', name: 'live/cam' });
    assert.equal(parseRelayedName('cam'), undefined);
    assert.equal(parseRelayedName('/cam'), undefined);
    assert.equal(parseRelayedName('app/'), undefined);
  });
});
