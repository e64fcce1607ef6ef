// Every option a command declares is in its --help output and in README.md's
// command reference, so that neither drifts from the option table the command
// is parsed with (bin/parseCommand.ts). In process: the help text is main()'s.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { commandList } from './commandList.ts';
import { commandHelp, overviewHelp } from './help.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The README's entry of `name` in its command reference: from its bullet to the next one. */
function readmeEntry(name: string): string {
  const section = readme.slice(readme.indexOf('\n## Commands\n'));
  const body = section.slice(0, section.indexOf('\n## ', 1) < 0 ? undefined : section.indexOf('\n## ', 1));
  const start = body.indexOf(`\n- \`npx cowmap ${name}`);
  assert.ok(start >= 0, `README.md's command reference has no entry for ${name}`);
  const next = body.indexOf('\n- ', start + 1);
  return body.slice(start, next < 0 ? undefined : next);
}

function mentions(text: string, option: string): boolean {
  return new RegExp(`--${option}(?![\\w-])`).test(text);
}

describe('the help and the README list every option', () => {
  for (const description of commandList) {
    it(`${description.name}: its --help and its README entry name each declared option`, () => {
      const help = commandHelp(description);
      assert.match(help, new RegExp(`^usage: cowmap ${description.name} `));
      const entry = readmeEntry(description.name);
      for (const option of Object.keys(description.options)) {
        assert.ok(mentions(help, option), `--${option} is in cowmap ${description.name} --help`);
        assert.ok(mentions(entry, option), `--${option} is in README.md's entry of ${description.name}:\n${entry}`);
      }
    });
  }

  it('cowmap --help lists every command with its summary', () => {
    const overview = overviewHelp(commandList);
    for (const description of commandList)
      assert.match(
        overview,
        new RegExp(`^  ${description.name} +${description.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'),
      );
  });

  it('a test that can fail: an option left out of the README is found', () => {
    assert.equal(mentions(readmeEntry('verify'), 'no-such-option'), false);
    assert.equal(mentions('--states-max M', 'states'), false, 'a prefix is not the option');
  });
});
