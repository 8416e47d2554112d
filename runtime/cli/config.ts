import { statSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, type ConfigOverrides, type FnhostConfig, loadConfig } from '../config/config.ts';
import { CommandError } from './command.ts';

/**
 * The config a command runs with: `./wrangler-like.toml` (or `--config FILE`), then FNHOST_*
 * environment variables, then the command's flags. What the config ignored is said on stderr.
 */
export function commandConfig(configFlag: string | undefined, overrides: ConfigOverrides): FnhostConfig {
  const cwd = process.cwd();
  const config = loadConfig({
    dir: cwd,
    file: configFlag && path.resolve(cwd, configFlag),
    env: process.env,
    overrides,
  });
  for (const warning of config.warnings) process.stderr.write(`fnhost: warning: ${warning}\n`);
  return config;
}

/**
 * The app folder (`main`, or the folder given on the command line) as the user would type it
 * from here; a folder that is not there is named as such, not as an app without functions.
 */
export function appFolder(config: FnhostConfig): string {
  const dir = path.relative(process.cwd(), config.mainPath) || '.';
  const stat = statSync(config.mainPath, { throwIfNoEntry: false });
  const where = `(give your functions' folder on the command line, or main in ${CONFIG_FILE})`;
  if (!stat) throw new CommandError(`no folder ${dir} ${where}`);
  if (!stat.isDirectory()) throw new CommandError(`${dir} is not a folder ${where}`);
  return dir;
}
