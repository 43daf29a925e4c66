import { describe, expect, it } from 'vitest';
import { ProxyError } from '../proxy-error.js';
import { toProxyError } from '../server/failures.js';
import { parseJsonText, readJsonBody } from '../server/json-body.js';
import { MAX_JSON_DEPTH } from './json-depth.js';
import { isJsonValue, jsonLineEnd, scanJson } from './json-scan.js';
import { seededRandom } from '../../test/helpers/seeded-random.js';

/** What the chat lane answered when it decoded and parsed every body: 'ok', or the refusal's message. */
function reference(bytes: Buffer): string {
  try {
    parseJsonText(bytes.toString('utf8'));
    return 'ok';
  } catch (err) {
    return (err as ProxyError).message;
  }
}

function readVerdict(bytes: Buffer): string {
  try {
    readJsonBody(bytes);
    return 'ok';
  } catch (err) {
    return (err as ProxyError).message;
  }
}

/**
 * The scan agrees with the full parser: with `checkStrings`, the same verdict, and an object's members are its
 * parsed members. Without (the chat lane's scan), it refuses nothing the parser accepts, finds the same
 * members, and accepts more only where a string value's contents are damaged.
 */
function expectEquivalent(bytes: Buffer): void {
  const expected = reference(bytes);
  const scan = scanJson(bytes, true);
  const label = JSON.stringify(bytes.toString('latin1').slice(0, 200));
  if (scan.verdict === 'ok') {
    expect(expected, label).toBe('ok');
    const value = JSON.parse(bytes.toString('utf8').replace(/^\ufeff/, '')) as unknown;
    const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
    expect(scan.isObject, label).toBe(isObject);
    if (isObject) {
      const record = value as Record<string, unknown>;
      expect([...scan.members.keys()].sort(), label).toEqual(Object.keys(record).sort());
      for (const [name, [start, end]] of scan.members) {
        expect(JSON.parse(bytes.toString('utf8', start, end)), label).toEqual(record[name]);
      }
    }
  } else {
    expect(expected, label).not.toBe('ok');
    if (scan.verdict === 'invalid' && bytes.length > 0) {
      expect(expected, label).toBe('Request body is not valid JSON');
    }
  }
  const fast = scanJson(bytes);
  if (scan.verdict === 'ok') expect(fast, label).toEqual(scan);
  else if (fast.verdict !== 'ok') expect(fast.verdict, label).toBe(scan.verdict);
  else expect(stringContentsOnly(bytes), label).toBe(true);
  // isJsonValue: JSON.parse's verdict on the text, an object key `__proto__` refused as by the scan.
  let parses = true;
  try {
    JSON.parse(bytes.toString('utf8'));
  } catch {
    parses = false;
  }
  expect(isJsonValue(bytes), label).toBe(parses && expected !== 'Request body is not valid JSON');
  // The body read gets the full parser's verdict, but for damage the lane's scan leaves to the reader.
  expect(readVerdict(bytes), label).toBe(
    bytes.length === 0 ? 'Request body is empty; expected JSON' : fast.verdict === 'ok' ? 'ok' : expected,
  );
}

/**
 * Whether the body is valid once every string's contents are made harmless (control characters and stray
 * backslashes dropped, as the fast scan never looks at them): then its damage was inside strings only.
 */
function stringContentsOnly(bytes: Buffer): boolean {
  const text = bytes.toString('latin1');
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (!inString) {
      out += c;
      if (c === '"') inString = true;
      continue;
    }
    if (c === '\\') {
      const next = text[i + 1];
      // An escaped quote or backslash stays as it is (the fast scan reads those); any other escape goes.
      if (next === '"' || next === '\\') {
        out += c + next;
        i++;
      }
      continue;
    }
    if (c === '"') inString = false;
    if (c >= ' ') out += c;
  }
  return scanJson(Buffer.from(out, 'latin1'), true).verdict !== 'invalid';
}

const CASES = [
  '{}',
  '[]',
  ' \t\r\n{"model":"gpt-4o","stream":true} \n',
  '{"a":1,"a":2}',
  '{"model":"x","model":"y","stream":false,"stream":true}',
  '"text"',
  '123',
  '-0.5e+10',
  '1.',
  '.5',
  '01',
  '-',
  '1e',
  '1E-7',
  'true',
  'tru',
  'nul',
  'null ',
  '{"a":[1,2,{"b":null}],"c":"\\u00e9\\n\\"\\\\\\/\\b\\f\\r\\t"}',
  '{"a":"\\x"}',
  '{"a":"\\u12"}',
  '{"a":"\\u12G4"}',
  '{"a":"tab\there"}',
  '{"a":"nl\nhere"}',
  '{"a":1,}',
  '[1,]',
  '{"a" 1}',
  '{a:1}',
  "{'a':1}",
  '{"a":1}{',
  '{"a":1} x',
  '{"__proto__":{"x":1}}',
  '{"a":{"__proto__":1}}',
  '{"\\u005f_proto__":1}',
  '{"__pro\\u0074o__":1}',
  '{"a":"__proto__"}',
  '{"__proto___":1,"_proto__":2}',
  '{"constructor":{"prototype":{}}}',
  '{"é":"ü","emoji":"😀"}',
  '\ufeff{}',
  '',
  ' ',
  '{"a":NaN}',
  '{"a":Infinity}',
  '[' + '['.repeat(MAX_JSON_DEPTH - 2) + ']'.repeat(MAX_JSON_DEPTH - 1) + ']',
  '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH),
  '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1),
  '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH),
  '{"a":' + '{"b":'.repeat(MAX_JSON_DEPTH) + '1' + '}'.repeat(MAX_JSON_DEPTH + 1),
  '['.repeat(100_000),
];

describe('isJsonValue on a range', () => {
  it('jsonLineEnd: the line feed that ends one JSON value and the whitespace after it, else -1', () => {
    const at = (text: string) => jsonLineEnd(Buffer.from(text), 0);
    expect(at('{"a":[1,true,"x"]}\n')).toBe(18);
    expect(at('{"a":1} \t\r\n{')).toBe(10);
    expect(at('[DONE]\n')).toBe(-1);
    expect(at('{"a":1}')).toBe(-1);
    expect(at('{"a":\n1}\n')).toBe(-1);
    expect(at('"line\nbreak"\n')).toBe(-1);
    expect(at('{"a":1} x\n')).toBe(-1);
    expect(at('{"__proto__":1}\n')).toBe(-1);
    expect(at(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}\n`)).toBe(-1);
  });

  it('checks the value between start and end (a line break), not what is around it', () => {
    const line = Buffer.from('data: {"a":[1,true,"x"]}\r\n\ndata: 12\n');
    expect(isJsonValue(line, 6, 24)).toBe(true);
    expect(isJsonValue(line, 6, 23)).toBe(false);
    expect(isJsonValue(line, 33, 35)).toBe(true);
    expect(isJsonValue(Buffer.from('x {"a":\n1}'), 2, 7)).toBe(false);
  });
});

describe('scanJson: the chat lane checks on bytes, as the full parser made them', () => {
  it.each(CASES.map((c) => [c]))('%j', (text) => expectEquivalent(Buffer.from(text, 'utf8')));

  it("leaves a string value's damage to the step that reads it: a 400 invalid_json then", () => {
    const body = readJsonBody(Buffer.from('{"model":"m","messages":[{"content":"tab\there"}]}', 'utf8'));
    expect(body.field('model')).toBe('m');
    let thrown: unknown;
    try {
      body.field('messages');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SyntaxError);
    const answer = toProxyError(thrown as Error);
    expect([answer.status, answer.message, answer.code]).toEqual([
      400,
      'Request body is not valid JSON',
      'invalid_json',
    ]);
  });

  it('bytes that are not UTF-8: accepted inside strings (decoded as U+FFFD), refused outside', () => {
    for (const bytes of [
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x22, 0x7d]), // {"a":"\xC3"}
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
      Buffer.from([0x7b, 0x22, 0xe2, 0x82, 0x22, 0x3a, 0x31, 0x7d]), // a truncated 3-byte key
      Buffer.from([0x7b, 0x7d, 0xc3]),
      Buffer.from([0xc3, 0x7b, 0x7d]),
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xf0, 0x9f, 0x98, 0x22, 0x7d]),
    ]) {
      expectEquivalent(bytes);
    }
  });

  it('agrees with the full parser on random JSON and on random damage to it (fuzz)', () => {
    const { random, pick } = seededRandom(0x2545f491);
    const STRINGS = [
      '',
      'model',
      'stream',
      '__proto__',
      'é',
      '😀',
      'a"b',
      'back\\slash',
      'line\nbreak',
      '\u0001',
      'ü\t',
    ];
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 4 || r < 0.3) return pick<unknown>([null, true, false, 0, -1.5, 2e-7, 1e21, pick(STRINGS)]);
      if (r < 0.6) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 4); i > 0; i--)
        out[pick(STRINGS.filter((s) => s !== '__proto__'))] = value(depth + 1);
      return out;
    };
    const spaced = (text: string) =>
      text.replace(/[,:[\]{}]/g, (c) => (random() < 0.2 ? pick([' ', '\n', '\t', '\r\n ']) : '') + c);
    const NOISE = [
      '"',
      '\\',
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      ' ',
      '\n',
      '\u0000',
      '\u001f',
      'e',
      '-',
      '.',
      '0',
      'u',
      'é',
      '__proto__',
      '"__proto__"',
    ];
    for (let round = 0; round < 3000; round++) {
      let text = spaced(JSON.stringify(value(0)) ?? 'null');
      if (random() < 0.7) {
        for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
          const at = Math.floor(random() * (text.length + 1));
          const kind = random();
          if (kind < 0.4) text = text.slice(0, at) + pick(NOISE) + text.slice(at);
          else if (kind < 0.7) text = text.slice(0, at) + text.slice(at + 1);
          else text = text.slice(0, at) + pick(NOISE) + text.slice(at + 1);
        }
      }
      let bytes = Buffer.from(text, 'utf8');
      if (random() < 0.05 && bytes.length > 0) {
        bytes = Buffer.from(bytes);
        bytes[Math.floor(random() * bytes.length)] = pick([0x80, 0xc3, 0xff, 0xed]);
      }
      expectEquivalent(bytes);
      // The same bytes as an event's data line: its end found by the scan is the first line feed, when
      // what is before it is one JSON value (whitespace around it) and nowhere otherwise.
      const line = Buffer.concat([
        Buffer.from('data: '),
        bytes,
        Buffer.from(pick(['\n\n', ' \r\n', '\t\n'])),
      ]);
      const lf = line.indexOf(0x0a);
      expect([text, jsonLineEnd(line, 6)]).toEqual([text, isJsonValue(line, 6, lf) ? lf : -1]);
    }
  });
});
