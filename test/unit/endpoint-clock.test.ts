import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EndpointClock } from '../../runtime/endpoint-clock.ts';
import { Endpoint } from '../../runtime/rtmfp/endpoint.ts';
import { keyInline } from '../../runtime/rtmfp/handshake.ts';

/** A clock around an endpoint with nothing to do: only what `at` asks runs. */
function idleClock(): EndpointClock {
  const endpoint = new Endpoint({
    platform: { send: () => {}, rescheduled: () => {}, wake: () => {}, keying: keyInline },
    events: { opened: () => {}, flow: () => {}, dropped: () => {} },
  });
  return new EndpointClock(endpoint);
}

const wakeAt = (clock: EndpointClock, at: number) => new Promise<number>((r) => clock.at(at, r));

describe('EndpointClock', () => {
  test('at runs a deadline of the layers above the sessions, never before its time', async () => {
    const clock = idleClock();
    const first = await wakeAt(clock, 0);
    const due = first + 30;
    const now = await wakeAt(clock, due);
    assert.ok(now >= due, `serviced at ${now}, asked for ${due}`);
  });

  test('a stopped clock runs no deadline', async () => {
    const clock = idleClock();
    const first = await wakeAt(clock, 0);
    let ran = false;
    clock.at(first + 5, () => {
      ran = true;
    });
    clock.stop();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ran, false);
  });
});
