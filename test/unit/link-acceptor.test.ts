import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LinkAcceptor } from '../../runtime/host/link-acceptor.ts';
import { linkRequestValue, RELAY_APP, signLinkRequest } from '../../runtime/relay/link-credential.ts';
import type { AmfValue } from '../../runtime/rtmfp/amf-value.ts';
import { TCClientConnection } from '../../runtime/rtmfp/tc-client.ts';
import { TCServerConnection } from '../../runtime/rtmfp/tc-server.ts';
import { silentLogger } from '../support/node.ts';
import { nodeEntry } from '../support/node-records.ts';
import { PAIR_CLIENT, PAIR_SERVER, pairedSession } from '../support/session-pair.ts';

const SECRET = Buffer.alloc(32, 7);
const PEER = 'ab'.repeat(32);
const SELF = { id: 'nodea', epoch: 'e-a' };
const FAR = { id: 'nodeb', epoch: 'e-b1' };

/** Node A's acceptor and a link node B opened to it, over a keyed session pair (no sockets). */
function acceptedLink() {
  const acceptor = new LinkAcceptor({ self: () => SELF, secret: () => SECRET, log: silentLogger });
  const wire = { toServer: [] as Buffer[], toClient: [] as Buffer[] };
  const heard: AmfValue[] = [];
  let server: TCServerConnection | undefined;
  let client: TCClientConnection | undefined;
  const near = pairedSession('initiator', wire.toServer, (f) => client?.onFlow(f));
  const far = pairedSession(
    'responder',
    wire.toClient,
    (f) => server?.onFlow(f),
    () => server?.onSessionClosed(),
  );
  server = new TCServerConnection(far, PEER, acceptor);
  client = new TCClientConnection(near, {
    connected: () => {},
    call: () => {},
    status: (info) => heard.push(info),
  });
  let now = 0;
  const pump = () => {
    for (let round = 0; round < 20; round++) {
      now += 50;
      for (const s of [near, far]) s.service(now);
      const moved = wire.toServer.length + wire.toClient.length;
      for (const d of wire.toServer.splice(0)) far.receive(d, PAIR_CLIENT, now);
      for (const d of wire.toClient.splice(0)) near.receive(d, PAIR_SERVER, now);
      if (moved === 0) return;
    }
  };
  const request = signLinkRequest(
    SECRET,
    { node: FAR.id, epoch: FAR.epoch, to: SELF.id, peerId: PEER },
    Date.now(),
  );
  client.connect({ tcUrl: `rtmfp://a/${RELAY_APP}`, app: RELAY_APP, args: [linkRequestValue(request)] });
  pump();
  assert.equal(acceptor.stats().open, 1, 'the link is accepted');
  return { acceptor, pump, heard };
}

const closedWith = (heard: AmfValue[]) =>
  heard
    .map((info) => info as { code?: string; description?: string })
    .filter((info) => info.code === 'NetConnection.Connect.Closed')
    .map((info) => info.description);

describe('incoming relay links and the cluster node list', () => {
  test("a node list from before the far node's record keeps its link; one without it, once seen, closes it", () => {
    const { acceptor, pump, heard } = acceptedLink();
    acceptor.serversChanged([nodeEntry(SELF.id, { epoch: SELF.epoch })]);
    assert.equal(acceptor.stats().open, 1, 'a list that may predate the record');
    acceptor.serversChanged([nodeEntry(SELF.id), nodeEntry(FAR.id, { epoch: FAR.epoch })]);
    assert.equal(acceptor.stats().open, 1);
    acceptor.serversChanged([nodeEntry(SELF.id)]);
    assert.equal(acceptor.stats().open, 0);
    pump();
    assert.deepEqual(closedWith(heard), [`node ${FAR.id} is gone`]);
  });

  test('a link from a node whose record names another epoch (it restarted) closes', () => {
    const { acceptor, pump, heard } = acceptedLink();
    acceptor.serversChanged([nodeEntry(FAR.id, { epoch: FAR.epoch })]);
    acceptor.serversChanged([nodeEntry(FAR.id, { epoch: 'e-b2' })]);
    assert.equal(acceptor.stats().open, 0);
    pump();
    assert.deepEqual(closedWith(heard), [`node ${FAR.id} restarted`]);
  });
});
