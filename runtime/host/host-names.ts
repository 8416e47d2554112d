import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Address } from '../rtmfp/address.ts';

/**
 * How long a host name's answer (addresses, or that it has none) is kept: onHandshake runs on
 * every IHello, and DNS is asked once per name in this time, not once per handshake.
 */
export const HOST_NAME_TTL_MS = 60_000;
/** Names kept at most; past it the oldest goes (a handler could return a new name each time). */
const MAX_HOST_NAMES = 1_000;
/** A lookup that takes longer counts as failed: the client waits for the answer to its IHello. */
const LOOKUP_TIMEOUT_MS = 2_000;

/** The IP addresses of a host name (IPv4 and IPv6); rejects when it has none. */
export type LookupAll = (host: string) => Promise<string[]>;

const systemLookup: LookupAll = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

type Answer = { addresses: string[] } | { error: string };

/**
 * Resolves the host names in redirect addresses (`rtmfp.example.com:1935`, as DESIGN.md's
 * `public_address` examples are) to the IP addresses an RFC 7016 §2.1.5 Redirect carries.
 */
export class HostNames {
  private readonly lookup: LookupAll;
  private readonly now: () => number;
  /** Oldest first; an entry holds the answer, or the lookup still under way. */
  private readonly answers = new Map<string, { at: number; answer: Promise<Answer> }>();

  constructor(o: { lookup?: LookupAll; now?: () => number } = {}) {
    this.lookup = o.lookup ?? systemLookup;
    this.now = o.now ?? Date.now;
  }

  /**
   * `target` with its host as IP addresses (an IP literal as it is), preferring the family of
   * `client`'s address when the name has both; rejects with a message naming the host.
   */
  async resolve(target: Address, client: Address): Promise<Address[]> {
    if (isIP(target.address) !== 0) return [target];
    const answer = await this.answer(target.address);
    if ('error' in answer) throw new Error(`host name "${target.address}" does not resolve: ${answer.error}`);
    const family = isIP(client.address);
    const same = answer.addresses.filter((a) => isIP(a) === family);
    return (same.length > 0 ? same : answer.addresses).map((address) => ({ address, port: target.port }));
  }

  private answer(host: string): Promise<Answer> {
    const now = this.now();
    const kept = this.answers.get(host);
    if (kept && now - kept.at < HOST_NAME_TTL_MS) return kept.answer;
    this.answers.delete(host);
    const answer = this.ask(host);
    this.answers.set(host, { at: now, answer });
    if (this.answers.size > MAX_HOST_NAMES) this.answers.delete(this.answers.keys().next().value!);
    return answer;
  }

  /** Never rejects: a failure is an answer too, kept like one. */
  private async ask(host: string): Promise<Answer> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${LOOKUP_TIMEOUT_MS} ms`)),
        LOOKUP_TIMEOUT_MS,
      );
      timer.unref();
    });
    try {
      const addresses = (await Promise.race([this.lookup(host), timeout])).filter((a) => isIP(a) !== 0);
      return addresses.length > 0 ? { addresses } : { error: 'no IP address' };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      return { error: typeof code === 'string' ? code : e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(timer);
    }
  }
}
