/**
 * `fnhost versions`: an app's deploy history as the cluster keeps it (newest first, at most
 * MAX_VERSIONS), with the active one marked — what `fnhost rollback` picks from.
 */
import { shortHash } from '../cluster/state.ts';
import { CLUSTER_HELP, parseClusterArgs, table, withCluster } from './cluster.ts';
import { type Command, usageError } from './command.ts';
import { summaryOf } from './commands.ts';

export const versions: Command = {
  ...summaryOf('versions'),
  shared: CLUSTER_HELP,
  run: listVersions,
};

async function listVersions(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, {});
  if (positionals.length > 0) throw usageError(`versions takes no arguments, got ${positionals.join(' ')}`);
  const config = load();
  const app = config.name;
  return withCluster(config, 'versions', async (state) => {
    const [list, active] = await Promise.all([state.versions(app), state.active(app)]);
    if (values.json) {
      const rows = list.map((v) => ({
        hash: v.hash,
        deployedAt: new Date(v.deployedAt).toISOString(),
        by: v.by,
        files: v.files,
        active: v.hash === active,
      }));
      process.stdout.write(`${JSON.stringify({ app, active: active ?? null, versions: rows })}\n`);
      return 0;
    }
    if (list.length === 0) {
      process.stdout.write(`no versions of ${app} in cluster "${config.cluster.name}" yet: fnhost deploy\n`);
      return 0;
    }
    // The active version is marked once, where it first appears (a redeploy repeats a hash).
    const marked = list.findIndex((v) => v.hash === active);
    const rows = list.map((v, i) => [
      i === marked ? '*' : '',
      shortHash(v.hash),
      new Date(v.deployedAt).toISOString(),
      v.by,
      String(v.files.length),
    ]);
    process.stdout.write(table(['', 'HASH', 'DEPLOYED AT', 'BY', 'FILES'], rows, [4]));
    process.stdout.write(
      marked >= 0
        ? '* active\n'
        : `no active version${active ? ` (${shortHash(active)} is not in the history)` : ''}\n`,
    );
    return 0;
  });
}
