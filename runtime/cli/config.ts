import path from 'node:path';
import { type ConfigOverrides, type FnhostConfig, loadConfig } from '../config/config.ts';

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
