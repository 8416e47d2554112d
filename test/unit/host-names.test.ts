import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HOST_NAME_TTL_MS, HostNames, type LookupAll } from '../../runtime/host/host-names.ts';

const V4_CLIENT = { address: '10.0.0.7', port: 50_000 };
const V6_CLIENT = { address: '2001:db8::7', port: 50_000 };

/** A lookup that answers from `zone` and counts what it was asked. */
function fakeDns(zone: Record<string, string[]>): LookupAll & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (host: string) => {
    asked.push(host);
    const addresses = zone[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses;
  };
  return Object.assign(lookup, { asked });
}

test('a host name is looked up once for every handshake within the TTL, concurrent or not', async () => {
  const dns = fakeDns({ 'edge.example': ['192.0.2.10'] });
  const names = new HostNames({ lookup: dns });
  const target = { address: 'edge.example', port: 1935 };
  const first = await Promise.all([names.resolve(target, V4_CLIENT), names.resolve(target, V4_CLIENT)]);
  const later = await names.resolve(target, V4_CLIENT);
  for (const r of [...first, later]) assert.deepEqual(r, [{ address: '192.0.2.10', port: 1935 }]);
  assert.deepEqual(dns.asked, ['edge.example']);
});

test('after the TTL the name is looked up again', async () => {
  const dns = fakeDns({ 'edge.example': ['192.0.2.10'] });
  let now = 0;
  const names = new HostNames({ lookup: dns, now: () => now });
  const target = { address: 'edge.example', port: 1935 };
  await names.resolve(target, V4_CLIENT);
  now += HOST_NAME_TTL_MS - 1;
  await names.resolve(target, V4_CLIENT);
  assert.equal(dns.asked.length, 1);
  now += 1;
  await names.resolve(target, V4_CLIENT);
  assert.equal(dns.asked.length, 2);
});

test('a name that does not resolve is refused with its name and the reason, and remembered as such', async () => {
  const dns = fakeDns({});
  const names = new HostNames({ lookup: dns });
  const target = { address: 'nohost.invalid', port: 1935 };
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      names.resolve(target, V4_CLIENT),
      /^Error: host name "nohost\.invalid" does not resolve: ENOTFOUND$/,
    );
  }
  assert.deepEqual(dns.asked, ['nohost.invalid']);
});

test('an IP literal is used as it is, without a lookup', async () => {
  const dns = fakeDns({});
  const names = new HostNames({ lookup: dns });
  assert.deepEqual(await names.resolve({ address: '192.0.2.1', port: 1 }, V4_CLIENT), [
    { address: '192.0.2.1', port: 1 },
  ]);
  assert.deepEqual(await names.resolve({ address: '2001:db8::1', port: 2 }, V4_CLIENT), [
    { address: '2001:db8::1', port: 2 },
  ]);
  assert.deepEqual(dns.asked, []);
});

test('a name with IPv4 and IPv6 addresses gives the client those of its own family, else all', async () => {
  const names = new HostNames({
    lookup: fakeDns({ dual: ['192.0.2.10', '2001:db8::10'], v6only: ['2001:db8::11'] }),
  });
  assert.deepEqual(await names.resolve({ address: 'dual', port: 1935 }, V4_CLIENT), [
    { address: '192.0.2.10', port: 1935 },
  ]);
  assert.deepEqual(await names.resolve({ address: 'dual', port: 1935 }, V6_CLIENT), [
    { address: '2001:db8::10', port: 1935 },
  ]);
  assert.deepEqual(await names.resolve({ address: 'v6only', port: 1935 }, V4_CLIENT), [
    { address: '2001:db8::11', port: 1935 },
  ]);
});
