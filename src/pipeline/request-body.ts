/** Where a top-level member's value lies in the body's bytes: [start, end). */
export type MemberRanges = ReadonlyMap<string, readonly [number, number]>;

const NOT_YET = Symbol('not parsed yet');
/** Stands in for a JSON object's prototype chain: a name no member has reads what a parsed object reads. */
const PLAIN_OBJECT: object = Object.freeze({});

/**
 * A client's JSON body as the chat lane read it: its bytes, already checked (src/protocols/json-scan.ts), read
 * further only as far as a step asks — a field parsed from its own bytes, the whole value parsed at most
 * once, the text decoded at most once. The same-protocol path reads `model` and `stream` and forwards the
 * bytes; a coding agent's prompt of hundreds of kilobytes is never decoded nor parsed (docs/performance.md,
 * "Large bodies").
 *
 * `fields` is the body as an object for code that reads one (`body.model`, `{...body}`,
 * `JSON.stringify(body)`): a read of a name parses that member alone; listing the names parses the whole.
 */
export class RequestBody {
  /** Parsed members, by name (the same value on every read). */
  private readonly parsedFields = new Map<string, unknown>();
  private whole: unknown = NOT_YET;
  private decoded: string | undefined;
  private view: Record<string, unknown> | undefined;

  /**
   * `members`: for a body that is a JSON object, where each top-level member's value lies (the last of a
   * repeated name, as JSON.parse keeps); null for any other JSON value. `parsed`: the value when the caller
   * has already parsed it.
   */
  constructor(
    readonly bytes: Buffer,
    private readonly members: MemberRanges | null,
    parsed: unknown = NOT_YET,
  ) {
    this.whole = parsed;
  }

  /** Whether the body is a JSON object (not an array, a string, a number or a literal). */
  get isObject(): boolean {
    if (this.members !== null) return true;
    const value = this.value;
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  }

  /** The body as UTF-8 text, decoded once. */
  get text(): string {
    return (this.decoded ??= this.bytes.toString('utf8'));
  }

  /** The whole value, parsed once (members already read keep their identity). */
  get value(): unknown {
    if (this.whole === NOT_YET) {
      const text = this.text;
      // Without a byte order mark, which the chat lane's checks allow (as Fastify's parser does).
      const value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown;
      if (this.parsedFields.size > 0) {
        for (const [name, field] of this.parsedFields) (value as Record<string, unknown>)[name] = field;
      }
      this.whole = value;
    }
    return this.whole;
  }

  /** A top-level member of an object body (undefined when there is none); its bytes alone are parsed. */
  field(name: string): unknown {
    if (this.whole !== NOT_YET) return readOwn(this.whole, name);
    if (this.parsedFields.has(name)) return this.parsedFields.get(name);
    const range = this.members?.get(name);
    if (range === undefined) return undefined;
    const value = parseMember(this.bytes, range[0], range[1]);
    this.parsedFields.set(name, value);
    return value;
  }

  /**
   * Whether the (object) body, as received and not yet parsed whole, has no member `name`: a step that only
   * needs to know a member is absent (the guard's `tools`) asks here rather than through `fields`.
   */
  lacks(name: string): boolean {
    return this.whole === NOT_YET && this.members !== null && !this.members.has(name);
  }

  /**
   * Where a top-level member's value lies in `bytes`, while neither it nor the whole body was parsed (a step
   * that reads part of a large member itself, the loop guard's turns); undefined otherwise.
   */
  unparsedRange(name: string): readonly [number, number] | undefined {
    if (this.whole !== NOT_YET || this.parsedFields.has(name)) return undefined;
    return this.members?.get(name);
  }

  /** The (object) body as an object whose members are parsed as they are read. */
  get fields(): Record<string, unknown> {
    return (this.view ??= new Proxy({}, new FieldsHandler(this)) as Record<string, unknown>);
  }
}

const TRUE = 0x74;
const FALSE = 0x66;
const NULL = 0x6e;
const QUOTE = 0x22;

/**
 * A member's value from its bytes (already checked as one JSON value by the chat lane's scan): the
 * literals and a plain string (printable ASCII, no escape: a model name, most often) read without decoding
 * the range and running `JSON.parse` over it; anything else parsed, with the parser's verdict.
 */
function parseMember(bytes: Buffer, start: number, end: number): unknown {
  const first = bytes[start];
  if (first === TRUE && end - start === 4) return true;
  if (first === FALSE && end - start === 5) return false;
  if (first === NULL && end - start === 4) return null;
  if (first === QUOTE && end - start <= 256) {
    let i = start + 1;
    const last = end - 1;
    while (i < last) {
      const b = bytes[i]!;
      if (b < 0x20 || b > 0x7e || b === 0x5c) break;
      i++;
    }
    if (i === last) return bytes.toString('latin1', start + 1, last);
  }
  return JSON.parse(bytes.toString('utf8', start, end)) as unknown;
}

function readOwn(value: unknown, name: string): unknown {
  return Reflect.get(value as object, name);
}

/**
 * The view's traps: one object per body, its methods on the prototype (not a handler of seven closures made
 * for every request's view).
 */
class FieldsHandler implements ProxyHandler<object> {
  constructor(private readonly body: RequestBody) {}

  private whole(): object {
    return this.body.value as object;
  }

  get(_target: object, key: string | symbol): unknown {
    if (typeof key !== 'string') return Reflect.get(this.whole(), key);
    const member = this.body.field(key);
    return member === undefined ? Reflect.get(PLAIN_OBJECT, key) : member;
  }

  has(_target: object, key: string | symbol): boolean {
    return key in this.whole();
  }

  ownKeys(): ArrayLike<string | symbol> {
    return Reflect.ownKeys(this.whole());
  }

  getOwnPropertyDescriptor(_target: object, key: string | symbol): PropertyDescriptor | undefined {
    return Reflect.getOwnPropertyDescriptor(this.whole(), key);
  }

  set(_target: object, key: string | symbol, item: unknown): boolean {
    return Reflect.set(this.whole(), key, item);
  }

  deleteProperty(_target: object, key: string | symbol): boolean {
    return Reflect.deleteProperty(this.whole(), key);
  }

  defineProperty(_target: object, key: string | symbol, descriptor: PropertyDescriptor): boolean {
    return Reflect.defineProperty(this.whole(), key, descriptor);
  }
}
