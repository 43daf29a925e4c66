import { describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { parseCommands } from './commands.js';

/** No secret in these texts: nothing to redact. */
const keep = (text: string): string => text;

describe('parseCommands', () => {
  it('leaves an ordinary message alone', () => {
    expect(parseCommands('hello !/help', '!/', keep)).toBeUndefined();
    expect(parseCommands('', '!/', keep)).toBeUndefined();
  });

  it('reads one command with nothing after it', () => {
    expect(parseCommands('!/help', '!/', keep)).toEqual({ ok: true, commands: [{ name: 'help' }], rest: '' });
    expect(parseCommands('  !/session  \n', '!/', keep)).toEqual({
      ok: true,
      commands: [{ name: 'session' }],
      rest: '',
    });
  });

  it('reads several commands and the text after them', () => {
    expect(
      parseCommands('!/set(model=openai:gpt-4o, temperature=0.2) !/oneoff(gemini:flash) fix it', '!/', keep),
    ).toEqual({
      ok: true,
      commands: [
        { name: 'set', values: { model: 'openai:gpt-4o', temperature: 0.2 } },
        { name: 'oneoff', model: 'gemini:flash' },
      ],
      rest: 'fix it',
    });
  });

  it('reads set(reasoning), unset and route', () => {
    expect(
      parseCommands('!/set(reasoning=high)!/unset(model, temperature) !/route(coder)', '!/', keep),
    ).toEqual({
      ok: true,
      commands: [
        { name: 'set', values: { reasoning: 'high' } },
        { name: 'unset', settings: ['model', 'temperature'] },
        { name: 'route', route: 'coder' },
      ],
      rest: '',
    });
  });

  it('honours another prefix', () => {
    expect(parseCommands('##help', '##', keep)).toEqual({ ok: true, commands: [{ name: 'help' }], rest: '' });
    expect(parseCommands('!/help', '##', keep)).toBeUndefined();
  });

  it.each([
    ['!/frobnicate', "'!/frobnicate' is not a command"],
    ['!/', "'!/' is not a command"],
    ['!/set(model=gpt', "'!/set(model=gpt' is missing its closing ')'"],
    ['!/set()', '!/set needs name=value, e.g. temperature=0.2'],
    ['!/set(colour=red)', "!/set cannot set 'colour' (model, temperature or reasoning)"],
    ['!/set(temperature=3)', '!/set temperature is a number from 0 to 2'],
    ['!/set(temperature=)', '!/set temperature is a number from 0 to 2'],
    ['!/set(reasoning=max)', '!/set reasoning is one of off, low, medium, high'],
    ['!/set(model=)', '!/set model needs a name, e.g. model=openai:gpt-4o'],
    ['!/unset()', '!/unset needs a setting name: model, temperature or reasoning'],
    ['!/unset(colour)', "!/unset cannot unset 'colour' (model, temperature or reasoning)"],
    ['!/oneoff()', '!/oneoff needs a model name, e.g. openai:gpt-4o'],
    ['!/help(me)', '!/help takes no arguments'],
  ])('names what is wrong with %j', (text, error) => {
    expect(parseCommands(text, '!/', keep)).toEqual({ ok: false, error });
  });

  it('quotes a bad command with the secrets in it masked before it is cut short', () => {
    const secret = 'opaque-secret-key-0123456789abcdefghij';
    const redactor = new Redactor([secret]);
    const redact = (text: string) => redactor.redact(text);
    expect(parseCommands(`!/${secret}`, '!/', redact)).toEqual({
      ok: false,
      error: "'!/****' is not a command",
    });
    // Whole, the secret would be found; cut at 40 characters, its start would show.
    expect(parseCommands(`!/set(model=${'m'.repeat(30)}${secret}`, '!/', redact)).toEqual({
      ok: false,
      error: `'!/set(model=${'m'.repeat(28)}…' is missing its closing ')'`,
    });
    expect(parseCommands(`!/set(model=${'m'.repeat(20)}${secret}`, '!/', redact)).toEqual({
      ok: false,
      error: `'!/set(model=${'m'.repeat(20)}****' is missing its closing ')'`,
    });
  });
});
