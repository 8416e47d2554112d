/**
 * Every `fnhost` subcommand as `fnhost --help` lists it, and where the rest of it lives. A
 * command's module (and with it esbuild, isolated-vm, the node runtime, ioredis, pino …) loads
 * only when that command runs, so `fnhost --version`, `--help` or a cluster command do not wait
 * for what they never use. This file imports nothing at run time.
 *
 * The name, synopsis and about are written here only: each command's definition takes them
 * with `summaryOf`, for its own `--help`.
 */
import type { Command, CommandSummary } from './command.ts';

/** A command as the overall usage lists it, and how to load its definition when it runs. */
export interface ListedCommand extends CommandSummary {
  load(): Promise<Command>;
}

/** What pause, resume and drain say of their NODE. */
const NODE_ARGUMENT =
  'NODE is a node id, or a prefix of one that names a single node (fnhost status lists them).';

/** In the order `fnhost --help` lists them. */
export const COMMANDS: readonly ListedCommand[] = [
  {
    name: 'init',
    synopsis: ['init DIR [--name NAME] [--fnhost SPEC] [--json]'],
    about: `Creates a project in DIR (new or empty): wrangler-like.toml, functions/index.ts, client.ts,
tsconfig.json, package.json depending on fnhost, README.md. Then: cd DIR, npm install, npx fnhost dev.`,
    load: async () => (await import('./init.ts')).init,
  },
  {
    name: 'dev',
    synopsis: ['dev [dir] [--rtmfp HOST:PORT]... [--config FILE] [--json]'],
    about: `Runs one standalone node (no Redis) with the app in dir (default: main in the config, else
functions/), rebuilt and hot-swapped on every save; clients stay connected.`,
    load: async () => (await import('./dev.ts')).dev,
  },
  {
    name: 'node',
    synopsis: ['node [--redis URL] [--rtmfp HOST:PORT]... [--http [HOST:]PORT] [--public-address HOST:PORT]'],
    about: 'Runs a cluster node: registers in Redis, runs every deployed app, follows deploys.',
    load: async () => (await import('./node.ts')).node,
  },
  {
    name: 'deploy',
    synopsis: ['deploy [dir] [--timeout SECONDS] [cluster options]'],
    about: `Bundles the app in dir (default: main in the config, else functions/), checks that it starts,
makes it the active version and waits until every live node runs it.`,
    load: async () => (await import('./deploy.ts')).deploy,
  },
  {
    name: 'versions',
    synopsis: ['versions [cluster options]'],
    about: "The app's deployed versions, newest first; * marks the active one.",
    load: async () => (await import('./versions.ts')).versions,
  },
  {
    name: 'rollback',
    synopsis: ['rollback [VERSION] [--timeout SECONDS] [cluster options]'],
    about: `Makes VERSION (a hash prefix of 6+ digits; default: the one before the active one)
active again and waits for the nodes, as deploy does.`,
    load: async () => (await import('./rollback.ts')).rollback,
  },
  {
    name: 'status',
    synopsis: ['status [--watch] [cluster options]'],
    about:
      'The live nodes (addresses, state, load, app versions, last heartbeat), the groups and the publications.',
    load: async () => (await import('./status.ts')).status,
  },
  {
    name: 'pause',
    synopsis: ['pause NODE [--timeout SECONDS] [cluster options]'],
    about: `Takes a node out of balancing: it keeps its clients and serves those that reach it, but
balancers send it none. ${NODE_ARGUMENT}`,
    load: async () => (await import('./pause-drain.ts')).pause,
  },
  {
    name: 'resume',
    synopsis: ['resume NODE [--timeout SECONDS] [cluster options]'],
    about: `Undoes pause, and drain before its deadline: the node serves and is balanced again.
${NODE_ARGUMENT}`,
    load: async () => (await import('./pause-drain.ts')).resume,
  },
  {
    name: 'drain',
    synopsis: ['drain NODE [--deadline DURATION] [--timeout SECONDS] [cluster options]'],
    about: `Empties a node: it leaves balancing at once and redirects new handshakes to other nodes; at
the deadline its clients still connected are redirected to other nodes (NetConnection.Connect.Closed
with ex.code 302 and ex.redirect), then it exits. resume before the deadline cancels it.
${NODE_ARGUMENT}`,
    load: async () => (await import('./pause-drain.ts')).drain,
  },
  {
    name: 'secret',
    synopsis: [
      'secret put NAME [--timeout SECONDS] [cluster options] < value',
      'secret list [cluster options]',
      'secret delete NAME [--timeout SECONDS] [cluster options]',
    ],
    about: `Manages the app's secrets (ctx.env, over [vars]). put reads the value from stdin; list shows
names only. A change takes effect on the running version on every node without a deploy;
put and delete wait until it has.`,
    load: async () => (await import('./secret.ts')).secret,
  },
  {
    name: 'tail',
    synopsis: ['tail [APP] [cluster options]'],
    about: "Streams the app's ctx.log lines from every node until Ctrl-C (APP: default name in the config).",
    load: async () => (await import('./tail.ts')).tail,
  },
];

/** Command `name`'s name, synopsis and about, for its own definition (and its `--help`). */
export function summaryOf(name: string): CommandSummary {
  const listed = COMMANDS.find((c) => c.name === name);
  if (!listed) throw new Error(`runtime/cli/commands.ts lists no command "${name}"`);
  return { name: listed.name, synopsis: listed.synopsis, about: listed.about };
}
