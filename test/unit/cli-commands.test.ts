import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import type { Command } from '../../runtime/cli/command.ts';
import { COMMANDS, summaryOf } from '../../runtime/cli/commands.ts';
import { MIN_PREFIX } from '../../runtime/cli/rollback.ts';

const CLI_DIR = new URL('../../runtime/cli/', import.meta.url);
/** Importing it runs the command line; it defines no command of its own. */
const ENTRY_POINT = 'fnhost.ts';

function isCommand(value: unknown): value is Command {
  const c = value as Partial<Command> | null;
  return typeof c?.name === 'string' && Array.isArray(c.synopsis) && typeof c.run === 'function';
}

/** Every Command that a module under runtime/cli exports, by where it is defined. */
async function definedCommands(): Promise<Map<Command, string>> {
  const defined = new Map<Command, string>();
  for (const file of readdirSync(CLI_DIR).filter((f) => f.endsWith('.ts') && f !== ENTRY_POINT)) {
    const exports: Record<string, unknown> = await import(new URL(file, CLI_DIR).href);
    for (const [name, value] of Object.entries(exports))
      if (isCommand(value)) defined.set(value, `runtime/cli/${file} (${name})`);
  }
  return defined;
}

test('each listed command loads the definition of that name, which takes its usage from the list', async () => {
  for (const listed of COMMANDS) {
    const command = await listed.load();
    assert.deepEqual(
      { name: command.name, synopsis: command.synopsis, about: command.about },
      summaryOf(listed.name),
      `runtime/cli/commands.ts: "${listed.name}" loads a command defined otherwise`,
    );
  }
});

test("rollback's usage states the version prefix it accepts", () => {
  assert.match(summaryOf('rollback').about, new RegExp(`hash prefix of ${MIN_PREFIX}\\+ digits`));
});

test('every command defined under runtime/cli is listed exactly once', async () => {
  const defined = await definedCommands();
  const loaded = await Promise.all(COMMANDS.map((c) => c.load()));
  for (const [command, where] of defined)
    assert.equal(
      loaded.filter((c) => c === command).length,
      1,
      `${where} defines "${command.name}": list it once in runtime/cli/commands.ts`,
    );
  assert.equal(loaded.length, defined.size, 'runtime/cli/commands.ts loads a command no module defines');
});
