/**
 * What every `fnhost` subcommand shares: how it describes itself (its usage, shown by `--help`
 * and after a wrong command line), how its flags are parsed, and how a failure is reported.
 */
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { StoreUnavailableError } from '../cluster/state.ts';
import { ConfigError } from '../config/config.ts';

/** How a subcommand introduces itself, in its own usage and in `fnhost --help`. */
export interface CommandSummary {
  name: string;
  /** How it is called, one line per form, without the leading `fnhost `. */
  synopsis: string[];
  /** What it does, in a few lines. */
  about: string;
}

/** One subcommand: `fnhost <name> …`. */
export interface Command extends CommandSummary {
  /** Its own flags, one line each: `  --timeout SECONDS   …`. */
  flags?: string;
  /** Flags it shares with other commands, explained after its own. */
  shared?: string;
  /** Runs it; the result is the exit code (undefined: 0). */
  run(argv: string[]): Promise<number | undefined>;
}

/**
 * A failure the user can act on: printed as `fnhost: <message>` without a stack trace.
 * Exit code 1, or 2 when the command line itself is wrong (then the command's usage follows).
 */
export class CommandError extends Error {
  readonly exitCode: 1 | 2;

  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.name = 'CommandError';
    this.exitCode = exitCode;
  }
}

/** A wrong command line (exit code 2). */
export function usageError(message: string): CommandError {
  return new CommandError(message, 2);
}

/** `--help` / `-h`, which every command takes. */
const HELP_OPTIONS = { help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsOptionsConfig;

/** The command's own usage: its forms, what it does, and the shared flags it takes. */
export function commandUsage(command: Command): string {
  const forms = command.synopsis.map((s, i) => `${i === 0 ? 'usage: ' : '       '}fnhost ${s}`);
  const sections = [forms.join('\n'), command.about, command.flags, command.shared];
  return `${sections.filter((s) => s !== undefined).join('\n\n')}\n`;
}

/**
 * Parses a command's flags. A flag it does not know, a missing value (`--timeout` last, or
 * followed by another flag) or a value given to a switch is a usage error of one line, not
 * Node's parser text; positionals are left for the command to check.
 */
export function parseOptions<T extends ParseArgsOptionsConfig>(argv: string[], options: T) {
  const known: ParseArgsOptionsConfig = { ...options, ...HELP_OPTIONS };
  const { tokens } = parseArgs({
    args: argv,
    options: known,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const type = Object.hasOwn(known, token.name) ? known[token.name].type : undefined;
    if (type === undefined) throw usageError(`unknown option ${token.rawName}`);
    if (type === 'boolean' && token.inlineValue) throw usageError(`${token.rawName} takes no value`);
    if (
      type === 'string' &&
      (token.value === undefined || (!token.inlineValue && token.value.startsWith('-')))
    )
      throw usageError(`${token.rawName} needs a value`);
  }
  // Checked above, so the strict parse cannot fail; it gives the values their types.
  return parseArgs({ args: argv, options: { ...options, ...HELP_OPTIONS }, allowPositionals: true });
}

/**
 * Runs `command`: `--help` prints its usage; a CommandError, ConfigError or StoreUnavailableError
 * is printed (a usage error with the command's usage) and ends the process with its exit code
 * at once, so a store still being dialled cannot keep it alive. Anything else is a bug and goes
 * to the caller.
 */
export async function runCommand(command: Command, argv: string[]): Promise<void> {
  const flags = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  if (flags.includes('--help') || flags.includes('-h')) {
    process.stdout.write(commandUsage(command));
    return;
  }
  let code: number | undefined;
  try {
    code = await command.run(argv);
  } catch (e) {
    if (e instanceof ConfigError) fail(`fnhost: ${e.message}\n`, 2);
    if (e instanceof StoreUnavailableError)
      fail(`fnhost: ${e.message} (lost Redis during ${command.name})\n`, 1);
    if (!(e instanceof CommandError)) throw e;
    if (e.exitCode === 2) fail(`fnhost ${command.name}: ${e.message}\n\n${commandUsage(command)}`, 2);
    fail(`fnhost: ${e.message}\n`, e.exitCode);
  }
  if (code) process.exitCode = code;
}

function fail(text: string, code: number): never {
  process.stderr.write(text);
  process.exit(code);
}

/**
 * One line of a command's result on stdout: `text` for people, or with `--json` the record
 * as one JSON line, so a script reading stdout gets nothing but JSON.
 */
export function printResult(json: boolean | undefined, text: string, record: Record<string, unknown>): void {
  process.stdout.write(json ? `${JSON.stringify(record)}\n` : `${text}\n`);
}
