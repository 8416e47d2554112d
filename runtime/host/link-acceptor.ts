import type { Logger } from 'pino';
import { LinkAuthError, LinkRequestVerifier, signLinkAcceptance } from '../relay/link-credential.ts';
import { formatAddress } from '../rtmfp/address.ts';
import type { AmfValue } from '../rtmfp/amf-value.ts';
import type { CallReply, ConnectRequest, TCServerConnection, TCServerHandler } from '../rtmfp/tc-server.ts';

export interface LinkAcceptorOptions {
  /** This node's id and epoch; undefined until it has joined the cluster. */
  self: () => { id: string; epoch: string } | undefined;
  /** The cluster secret; undefined until the store gave it. */
  secret: () => Buffer | undefined;
  log: Logger;
}

/** An accepted link: which node opened it. */
export interface AcceptedLink {
  node: string;
  epoch: string;
}

/** What `/status` shows of other nodes' links to this one. */
export interface AcceptedLinkStats {
  open: number;
  accepted: number;
  /** Refused connects to the relay app, by reason (link-credential.ts LinkRefusal, or 'starting'). */
  refused: Record<string, number>;
}

/**
 * The far end of other nodes' media links (RtmfpNode's `links`): a `connect` to the relay app
 * is accepted only with a request signed with the cluster secret, for this node, fresh and
 * never seen (link-credential.ts); the answer is signed too, so the opener knows it reached a
 * node of its cluster. Never an app's client: no handler runs for it.
 */
export class LinkAcceptor implements TCServerHandler {
  private readonly o: LinkAcceptorOptions;
  private verifier: LinkRequestVerifier | undefined;
  private readonly links = new Map<TCServerConnection, AcceptedLink>();
  private accepted = 0;
  private readonly refused = new Map<string, number>();

  constructor(o: LinkAcceptorOptions) {
    this.o = o;
  }

  connect(conn: TCServerConnection, request: ConnectRequest): void {
    const self = this.o.self();
    const secret = this.o.secret();
    if (!self || !secret) {
      this.refuse(conn, 'starting', 'this node has not joined its cluster yet');
      return;
    }
    this.verifier ??= new LinkRequestVerifier(secret);
    try {
      const link = this.verifier.verify(request.args[0], self.id, conn.peerId, Date.now());
      conn.accept({ ...signLinkAcceptance(secret, { node: self.id, epoch: self.epoch }, link, conn.peerId) });
      this.links.set(conn, { node: link.node, epoch: link.epoch });
      this.accepted++;
      this.o.log.info({ node: link.node, from: formatAddress(conn.session.address) }, 'relay link accepted');
    } catch (e) {
      if (!(e instanceof LinkAuthError)) throw e;
      this.refuse(conn, e.reason, e.message);
    }
  }

  call(_conn: TCServerConnection, name: string, _args: AmfValue[], reply: CallReply | undefined): void {
    reply?.error(`${name}: not a method of a relay link`);
  }

  closed(conn: TCServerConnection): void {
    this.links.delete(conn);
  }

  /** Which node opened `conn`, if it is an accepted link. */
  linkOf(conn: TCServerConnection): AcceptedLink | undefined {
    return this.links.get(conn);
  }

  stats(): AcceptedLinkStats {
    return { open: this.links.size, accepted: this.accepted, refused: Object.fromEntries(this.refused) };
  }

  private refuse(conn: TCServerConnection, reason: string, message: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
    this.o.log.warn(
      { reason, from: formatAddress(conn.session.address), err: message },
      'relay link refused',
    );
    conn.reject(message);
  }
}
