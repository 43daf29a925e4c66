/**
 * Model allow-lists (README, Teams: policies): which models a key may call. A list holds patterns; each kind
 * of pattern is one row of PATTERN_KINDS, tried in order, so a new kind (route names) is one more row.
 */

/** What a chat request asks for, as the pipeline resolved it. */
export interface ModelRequest {
  /** The model as the client wrote it (`anthropic:claude-sonnet-4-5`, `gpt-4o`). */
  readonly requested: string;
  /** The backend the request goes to, and the model as that backend knows it (prefix stripped). */
  readonly backend: string;
  readonly model: string;
}

type Matcher = (request: ModelRequest) => boolean;

interface PatternKind {
  readonly kind: string;
  accepts(pattern: string): boolean;
  compile(pattern: string): Matcher;
}

/** `*` matches any run of characters (`/` and `:` included); everything else matches itself. */
function glob(pattern: string): (text: string) => boolean {
  if (!pattern.includes('*')) return (text) => text === pattern;
  if (pattern === '*') return () => true;
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${source}$`, 's');
  return (text) => regex.test(text);
}

export const PATTERN_KINDS: readonly PatternKind[] = [
  {
    // `backend:model`: the backend's name and the model it is sent (globs on either side of the first colon).
    kind: 'backend:model',
    accepts: (pattern) => pattern.includes(':'),
    compile: (pattern) => {
      const colon = pattern.indexOf(':');
      const backend = glob(pattern.slice(0, colon));
      const model = glob(pattern.slice(colon + 1));
      return (request) => backend(request.backend) && model(request.model);
    },
  },
  {
    // A bare model name (or glob): that model on any backend.
    kind: 'model',
    accepts: () => true,
    compile: (pattern) => {
      const model = glob(pattern);
      return (request) => model(request.model);
    },
  },
];

function compilePattern(pattern: string): Matcher {
  const kind = PATTERN_KINDS.find((candidate) => candidate.accepts(pattern));
  // The last kind accepts every pattern.
  return (kind ?? (PATTERN_KINDS[PATTERN_KINDS.length - 1] as PatternKind)).compile(pattern);
}

/**
 * Several allow-lists that must all allow a model: the key's own and each of its labels'. Compiled once, at
 * load and reload.
 */
export class ModelAllowList {
  private readonly lists: ReadonlyArray<readonly Matcher[]>;

  constructor(lists: ReadonlyArray<readonly string[]>) {
    this.lists = lists.map((patterns) => patterns.map(compilePattern));
  }

  allows(request: ModelRequest): boolean {
    return this.lists.every((list) => list.some((matches) => matches(request)));
  }
}
