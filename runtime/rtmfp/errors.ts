/**
 * A datagram, chunk or message that does not follow the protocol. Thrown by the codecs
 * and caught once per datagram by whoever feeds bytes in, which drops and counts it
 * under `reason` — never thrown through a socket loop.
 */
export class ProtocolError extends Error {
  readonly reason: string;

  constructor(reason: string, message?: string) {
    super(message ?? reason);
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}
