import type { GroupSummary } from '../cluster/p2p.ts';
import type { PublicationInfo } from '../cluster/publications.ts';
import type { NodeEntry, NodeLoad, NodeState } from '../cluster/state.ts';

/** Groups the dashboard lists, largest first (it polls every second: keep the answer small). */
export const DASHBOARD_GROUPS = 50;
/** Publications the dashboard lists, by app then stream name (small, as for groups). */
export const DASHBOARD_PUBLICATIONS = 50;

/** What the view reads from the cluster store per answer; undefined: it could not be read. */
export interface StoreListings {
  groups: GroupSummary[] | undefined;
  publications: PublicationInfo[] | undefined;
}

/** One node as the dashboard shows it. */
export interface NodeView {
  id: string;
  /** `paused` is a flag on top of `serving`: a paused node keeps its clients, takes no balancing. */
  state: NodeState | 'paused';
  publicAddress: string;
  http: string | undefined;
  load: NodeLoad;
  /** app → version hash the node runs. */
  versions: Record<string, string>;
  /** app → why the active version did not load there. */
  errors: Record<string, string>;
}

/** What `/cluster.json` answers: the cluster as this node last heard it (each heartbeat). */
export interface ClusterView {
  /** The node answering. */
  node: string;
  cluster: string;
  /** When this node built the view, ms (its own clock: the page shows load over its own time). */
  at: number;
  nodes: NodeView[];
  /** app → the versions running across the cluster → node ids running each. */
  apps: Record<string, Record<string, string[]>>;
  /** The largest NetGroups (at most DASHBOARD_GROUPS), read from the store for this answer. */
  groups: GroupSummary[];
  /** Set when the store could not be read: `groups` is empty for that reason, not for lack of groups. */
  groupsUnavailable?: true;
  /**
   * Live publications (at most DASHBOARD_PUBLICATIONS, by app then name) with their origin node
   * and players per node, read from the store for this answer.
   */
  publications: PublicationInfo[];
  /** Set when the store could not be read: `publications` is empty for that reason. */
  publicationsUnavailable?: true;
}

export function clusterView(
  node: string,
  cluster: string,
  servers: NodeEntry[],
  { groups, publications }: StoreListings,
  at: number,
): ClusterView {
  const sorted = [...servers].sort((a, b) => a.id.localeCompare(b.id));
  const apps: ClusterView['apps'] = {};
  for (const s of sorted) {
    for (const [app, version] of Object.entries(s.versions)) {
      apps[app] ??= {};
      apps[app][version] = [...(apps[app][version] ?? []), s.id];
    }
  }
  return {
    node,
    cluster,
    at,
    nodes: sorted.map((s) => ({
      id: s.id,
      state: s.paused && s.state === 'serving' ? 'paused' : s.state,
      publicAddress: s.publicAddress,
      http: s.http,
      load: s.load,
      versions: s.versions,
      errors: s.errors,
    })),
    apps,
    groups: groups ?? [],
    ...(groups ? {} : { groupsUnavailable: true }),
    publications: publications ?? [],
    ...(publications ? {} : { publicationsUnavailable: true }),
  };
}
