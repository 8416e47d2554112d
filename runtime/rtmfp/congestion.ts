/** Maximum segment size for congestion accounting (RFC 7016 §3.6.2.3, rtmfp-cpp uses 1200). */
export const MSS = 1200;
/** RFC 7016 §3.6.2.3: at most this many packets in a burst before waiting for an ack. */
export const MAX_BURST_PACKETS = 6;
const INITIAL_ERTO_MS = 3000;
const MIN_ERTO_MS = 250;
const MAX_ERTO_MS = 10_000;
const RTO_FLOOR_MS = 200;

/**
 * Round-trip estimation and congestion window for one session, following RFC 7016 §3.5.2.2
 * (RTT from timestamp echoes, RFC 6298 smoothing) and §3.6.2 / Appendix A as rtmfp-cpp
 * implements it: slow start below ssthresh, additive increase above, halve on loss, and fall
 * back to 2·MSS after a retransmission timeout.
 */
export class Congestion {
  cwnd = 3 * MSS;
  ssthresh = Number.MAX_SAFE_INTEGER;
  srtt = 0;
  rttvar = 0;
  /** Effective retransmission timeout. */
  erto = INITIAL_ERTO_MS;
  private hasRtt = false;
  /** Losses in one round trip count once: no new cut before `recoveryUntil`. */
  private recoveryUntil = 0;
  private acked = 0;

  /** RFC 6298 §2 with α = 1/8, β = 1/4; MRTO = SRTT + 4·RTTVAR + 200 ms (RFC 7016 §3.5.2.2). */
  onRttSample(rttMs: number): void {
    if (!this.hasRtt) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
      this.hasRtt = true;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
      this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
    }
    this.erto = Math.min(MAX_ERTO_MS, Math.max(MIN_ERTO_MS, this.srtt + 4 * this.rttvar + RTO_FLOOR_MS));
  }

  /** New data acknowledged: grow the window (slow start, then one MSS per window). */
  onAck(bytes: number, windowFull: boolean): void {
    if (bytes <= 0) return;
    if (!windowFull) return; // RFC 7016 §3.6.2.3: only grow a window that is being used
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(bytes, MSS);
      return;
    }
    this.acked += bytes;
    if (this.acked >= this.cwnd) {
      this.acked -= this.cwnd;
      this.cwnd += MSS;
    }
  }

  /** Loss detected by acks of later packets: multiplicative decrease, once per round trip. */
  onLoss(now: number): void {
    if (now < this.recoveryUntil) return;
    this.recoveryUntil = now + (this.hasRtt ? this.srtt : this.erto);
    this.ssthresh = Math.max(3 * MSS, Math.floor(this.cwnd / 2));
    this.cwnd = this.ssthresh;
    this.acked = 0;
  }

  /** Retransmission timeout: back off the timer and restart from a small window (Appendix A.2). */
  onTimeout(): void {
    this.ssthresh = Math.max(this.ssthresh, Math.floor((this.cwnd * 3) / 4));
    this.cwnd = 2 * MSS;
    this.acked = 0;
    this.erto = Math.min(MAX_ERTO_MS, this.erto * Math.SQRT2);
  }
}
