import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Congestion, MSS } from '../../runtime/rtmfp/congestion.ts';

describe('round-trip estimation', () => {
  test('starts with a 3 s ERTO and no RTT', () => {
    const c = new Congestion();
    assert.equal(c.erto, 3000);
    assert.equal(c.srtt, 0);
  });

  test('the first sample sets SRTT and RTTVAR = RTT/2; ERTO = SRTT + 4·RTTVAR + 200 ms', () => {
    const c = new Congestion();
    c.onRttSample(100);
    assert.equal(c.srtt, 100);
    assert.equal(c.rttvar, 50);
    assert.equal(c.erto, 500);
  });

  test('later samples smooth with α = 1/8 and β = 1/4, RTTVAR from the old SRTT', () => {
    const c = new Congestion();
    c.onRttSample(100);
    c.onRttSample(200);
    assert.equal(c.rttvar, 0.75 * 50 + 0.25 * 100);
    assert.equal(c.srtt, 0.875 * 100 + 0.125 * 200);
    assert.equal(c.erto, c.srtt + 4 * c.rttvar + 200);
  });

  test('ERTO never goes below 250 ms', () => {
    const c = new Congestion();
    c.onRttSample(1);
    assert.equal(c.erto, 250);
    for (let i = 0; i < 50; i++) c.onRttSample(0);
    assert.equal(c.erto, 250);
  });

  test('ERTO never goes above 10 s', () => {
    const c = new Congestion();
    c.onRttSample(5000);
    assert.equal(c.erto, 10_000);
  });

  test('a steady RTT converges SRTT to it and RTTVAR towards 0', () => {
    const c = new Congestion();
    c.onRttSample(300);
    for (let i = 0; i < 100; i++) c.onRttSample(80);
    assert.ok(Math.abs(c.srtt - 80) < 0.01);
    assert.ok(c.rttvar < 0.01);
    assert.ok(Math.abs(c.erto - 280) < 0.1);
  });
});

describe('congestion window', () => {
  test('starts at 3·MSS in slow start', () => {
    const c = new Congestion();
    assert.equal(c.cwnd, 3 * MSS);
    assert.ok(c.ssthresh > 1e12);
  });

  test('slow start grows by the acked bytes, at most one MSS per ack', () => {
    const c = new Congestion();
    c.onAck(500, true);
    assert.equal(c.cwnd, 3 * MSS + 500);
    c.onAck(10 * MSS, true);
    assert.equal(c.cwnd, 4 * MSS + 500);
  });

  test('slow start doubles the window per round trip of full-window acks', () => {
    const c = new Congestion();
    const start = c.cwnd;
    const packets = start / MSS;
    for (let i = 0; i < packets; i++) c.onAck(MSS, true);
    assert.equal(c.cwnd, 2 * start);
  });

  test('a window that is not being used does not grow', () => {
    const c = new Congestion();
    c.onAck(MSS, false);
    c.onAck(0, true);
    assert.equal(c.cwnd, 3 * MSS);
  });

  test('above ssthresh the window grows by one MSS per window of acked bytes', () => {
    const c = new Congestion();
    for (let i = 0; i < 13; i++) c.onAck(MSS, true);
    c.onLoss(0);
    const cwnd = c.cwnd;
    assert.equal(cwnd, c.ssthresh);
    let acked = 0;
    while (acked + MSS < cwnd) {
      c.onAck(MSS, true);
      acked += MSS;
    }
    assert.equal(c.cwnd, cwnd);
    c.onAck(MSS, true);
    assert.equal(c.cwnd, cwnd + MSS);
  });

  test('a loss halves the window and sets ssthresh to it', () => {
    const c = new Congestion();
    for (let i = 0; i < 17; i++) c.onAck(MSS, true);
    assert.equal(c.cwnd, 20 * MSS);
    c.onLoss(1000);
    assert.equal(c.cwnd, 10 * MSS);
    assert.equal(c.ssthresh, 10 * MSS);
  });

  test('losses within one round trip cut the window once', () => {
    const c = new Congestion();
    c.onRttSample(100);
    for (let i = 0; i < 37; i++) c.onAck(MSS, true);
    assert.equal(c.cwnd, 40 * MSS);
    c.onLoss(1000);
    c.onLoss(1050);
    c.onLoss(1099);
    assert.equal(c.cwnd, 20 * MSS);
    c.onLoss(1100);
    assert.equal(c.cwnd, 10 * MSS);
  });

  test('before any RTT sample a loss protects the next ERTO', () => {
    const c = new Congestion();
    for (let i = 0; i < 37; i++) c.onAck(MSS, true);
    c.onLoss(0);
    c.onLoss(2999);
    assert.equal(c.cwnd, 20 * MSS);
    c.onLoss(3000);
    assert.equal(c.cwnd, 10 * MSS);
  });

  test('a loss never cuts the window below 3·MSS', () => {
    const c = new Congestion();
    c.onLoss(0);
    assert.equal(c.cwnd, 3 * MSS);
    assert.equal(c.ssthresh, 3 * MSS);
  });

  test('a timeout drops the window to 2·MSS and backs ERTO off by √2 up to 10 s', () => {
    const c = new Congestion();
    for (let i = 0; i < 17; i++) c.onAck(MSS, true);
    c.onTimeout();
    assert.equal(c.cwnd, 2 * MSS);
    assert.ok(Math.abs(c.erto - 3000 * Math.SQRT2) < 1e-9);
    c.onTimeout();
    assert.ok(Math.abs(c.erto - 6000) < 1e-9);
    c.onTimeout();
    c.onTimeout();
    assert.equal(c.erto, 10_000);
  });

  test('after a timeout the window slow-starts again from 2·MSS', () => {
    const c = new Congestion();
    for (let i = 0; i < 17; i++) c.onAck(MSS, true);
    c.onTimeout();
    c.onAck(MSS, true);
    assert.equal(c.cwnd, 3 * MSS);
  });

  test('a timeout never lowers ssthresh (RFC 7016 §A.2: ssthresh = max(ssthresh, ¾·cwnd))', () => {
    const fresh = new Congestion();
    fresh.onTimeout();
    assert.equal(fresh.ssthresh, Number.MAX_SAFE_INTEGER);

    const c = new Congestion();
    for (let i = 0; i < 37; i++) c.onAck(MSS, true);
    c.onLoss(0); // ssthresh = cwnd = 20·MSS
    c.onTimeout(); // cwnd 2·MSS; ssthresh must stay 20·MSS
    c.onTimeout(); // ¾·2·MSS is below it: still 20·MSS
    assert.equal(c.ssthresh, 20 * MSS);
  });
});
