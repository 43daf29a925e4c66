import secureJson from 'secure-json-parse';
import { RequestBody } from '../pipeline/request-body.js';
import { bodyError } from './failures.js';
import { nestedTooDeeply } from '../protocols/json-depth.js';
import { scanJson } from '../protocols/json-scan.js';

/**
 * A chat request's JSON body, checked on its bytes (`scanJson`) and handed on unparsed (`RequestBody`):
 * 400 for an empty body, for one that is not JSON or has a `__proto__` key (as Fastify's parser,
 * secure-json-parse, refuses it), and for one nested deeper than the cap (src/protocols/json-depth.ts).
 */
export function readJsonBody(bytes: Buffer): RequestBody {
  if (bytes.length === 0) throw bodyError('emptyJson');
  const scan = scanJson(bytes);
  if (scan.verdict === 'ok') return new RequestBody(bytes, scan.isObject ? scan.members : null);
  // A refusal (rare: a broken or hostile body) is the full parser's, exactly as before the scan existed.
  return new RequestBody(bytes, null, parseJsonText(bytes.toString('utf8')));
}

/** Fastify's default JSON parsing (`__proto__` keys refused, `constructor` left alone) and the depth cap. */
export function parseJsonText(text: string): unknown {
  if (text.length === 0) throw bodyError('emptyJson');
  let body: unknown;
  try {
    body = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'ignore' });
  } catch {
    throw bodyError('invalidJson');
  }
  if (nestedTooDeeply(text, body)) throw bodyError('tooDeep');
  return body;
}
