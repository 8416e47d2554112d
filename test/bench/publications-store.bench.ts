import { DASHBOARD_PUBLICATIONS } from '../../runtime/host/cluster-view.ts';
import { withStoreMeter } from './p2p-store.bench.ts';
import type { Row } from './report.ts';

/** Publications already in the registry, on NODES nodes, while the calls are measured. */
const LIVE = 1_000;
const NODES = 4;

const publisher = (n: number) => n.toString(16).padStart(64, 'b');

/**
 * The publication registry on a real redis-server (issue 10), with LIVE publications in it: what
 * a publish (claim) and an unpublish (release) cost, a lookup of a stream with players on
 * NODES nodes (what a play asks), a node setting its player count, and the dashboard's list of
 * DASHBOARD_PUBLICATIONS; each against a bare round trip (Redis TIME) measured just before it.
 */
export function publicationsStoreFigures(): Promise<Row[]> {
  return withStoreMeter(async (state, { measure, row }) => {
    const p = state.publications;
    for (let i = 0; i < LIVE; i++) {
      await p.claim({ app: 'live', name: `s${i}`, node: `n${i % NODES}`, publisher: publisher(i) });
      for (let n = 0; n < NODES; n++) await p.setSubscribers('live', `s${i}`, `n${n}`, 1 + ((i + n) % 7));
    }
    const fresh = (i: number) => ({
      app: 'live',
      name: `new${i}`,
      node: 'n0',
      publisher: publisher(LIVE + i),
    });
    // Warm up: scripts loaded (the first EVALSHA of each is NOSCRIPT, then EVAL), code compiled.
    await p.claim(fresh(-1));
    await p.release('live', 'new-1', 'n0', publisher(LIVE - 1));
    await p.get('live', 's0');
    await p.list(undefined, DASHBOARD_PUBLICATIONS);
    const claim = await measure((i) => p.claim(fresh(i)));
    const release = await measure((i) => p.release('live', `new${i}`, 'n0', publisher(LIVE + i)));
    const get = await measure((i) => p.get('live', `s${i % LIVE}`));
    const players = await measure((i) => p.setSubscribers('live', `s${i % LIVE}`, 'n1', i % 50));
    const list = await measure(() => p.list(undefined, DASHBOARD_PUBLICATIONS));
    const both = {
      micros: claim.micros + release.micros,
      trips: claim.trips + release.trips,
      commands: claim.commands + release.commands,
      bareMicros: (claim.bareMicros + release.bareMicros) / 2,
    };
    return [
      row(`store: publication claim, ${LIVE} live (Redis)`, claim),
      row(`store: publication release, ${LIVE} live (Redis)`, release),
      row('store: publication claim + release (Redis)', both),
      row(`store: publication get, players on ${NODES} nodes (Redis)`, get),
      row("store: set a node's player count (Redis)", players),
      row(`store: list ${DASHBOARD_PUBLICATIONS} publications, dashboard poll (Redis)`, list),
    ];
  });
}
