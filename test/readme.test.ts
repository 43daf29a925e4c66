import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENTS, MANIFEST, type AgentName } from '../scripts/agents/index.mjs';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

interface Heading {
  level: number;
  text: string;
  /** Index of its line in the README. */
  line: number;
}

const lines = readme.split('\n');

/** The README's headings, those inside code blocks (a shell comment) left out. */
const headings: Heading[] = (() => {
  const found: Heading[] = [];
  let fenced = false;
  lines.forEach((line, index) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const match = fenced ? null : /^(#{1,6}) (.+)$/.exec(line);
    if (match) found.push({ level: match[1]!.length, text: match[2]!, line: index });
  });
  return found;
})();

/** A heading's anchor, as GitHub makes it: lower case, punctuation out, spaces to hyphens. */
function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The text under a heading, up to the next heading of its level or above. */
function section(title: string): string {
  const start = headings.find((h) => h.text === title);
  if (!start) throw new Error(`no heading "${title}" in the README`);
  const end = headings.find((h) => h.line > start.line && h.level <= start.level);
  return lines.slice(start.line + 1, end?.line).join('\n');
}

/** The bodies of the code blocks of one language in a piece of the README (indented ones too). */
function codeBlocks(text: string, language: string): string[] {
  const blocks: string[] = [];
  const pattern = new RegExp(`^( *)\`\`\`${language}\\n([\\s\\S]*?)^\\1\`\`\``, 'gm');
  for (const match of text.matchAll(pattern)) blocks.push(match[2]!);
  return blocks;
}

/** Every `export NAME=value` of the bash blocks (several a line; quotes removed, comments ignored). */
function exportsOf(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const block of codeBlocks(text, 'bash'))
    for (const line of block.split('\n')) {
      const statement = line.trim().replace(/\s+#.*$/, '');
      if (!statement.startsWith('export ')) continue;
      for (const [, name, value] of statement.matchAll(/([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g))
        env[name!] = value!.replace(/^"(.*)"$/, '$1');
    }
  return env;
}

describe('README', () => {
  it('holds the configuration reference exactly as generated from the schema', () => {
    const generated = execFileSync(process.execPath, ['scripts/config-reference.mjs'], { encoding: 'utf8' });
    expect(readme).toContain(generated.trim());
  });

  it('has a Quick start with the start and test commands', () => {
    expect(readme).toMatch(/## Quick start/);
    expect(readme).toContain('npm ci && npm run build && LLM_INTERACTIVE_PROXY_API_KEY=');
    expect(readme).toContain('bash scripts/install-test-deps.sh && npm ci && npm test');
  });

  it('lists every top-level section in its Contents, and every link to a section finds one', () => {
    const contents = section('Contents');
    for (const h of headings.filter((h) => h.level === 2 && h.text !== 'Contents'))
      expect(contents, h.text).toContain(`(#${slug(h.text)})`);
    expect(contents).toContain('(#clients)');
    const anchors = new Set(headings.map((h) => slug(h.text)));
    for (const [, anchor] of readme.matchAll(/\]\(#([^)]+)\)/g)) expect(anchors, anchor).toContain(anchor);
  });
});

/**
 * The Clients recipes say what test/agents/agents.e2e.test.ts does: the same variables with the same values
 * and the same config files as AGENTS (scripts/agents/index.mjs) builds for a proxy at the README's address
 * and key placeholder, and the command line the test runs.
 */
describe('README: the coding agents’ recipes are what the agents test runs', () => {
  const PROXY = 'http://127.0.0.1:8000';
  const KEY = '<proxy key>';
  /** The test's package look-ups go to a 404 on loopback: the README names them but a user sets none. */
  const TEST_ONLY = ['NPM_CONFIG_REGISTRY', 'BUN_CONFIG_REGISTRY'];
  const RECIPES: Array<{ agent: AgentName; title: string; root: string }> = [
    { agent: 'claude', title: 'Claude Code', root: `${PROXY}/anthropic` },
    { agent: 'gemini', title: 'Gemini CLI', root: PROXY },
    { agent: 'opencode', title: 'opencode', root: PROXY },
  ];

  it.each(RECIPES)('$title', ({ agent, title, root }) => {
    const setup = AGENTS[agent].setup({
      baseUrl: AGENTS[agent].baseUrl(root),
      apiKey: KEY,
      home: '/home/you',
      sinkRoot: 'http://127.0.0.1:1',
    });
    const recipe = section(title);
    const env = Object.fromEntries(Object.entries(setup.env).filter(([name]) => !TEST_ONLY.includes(name)));
    expect(exportsOf(recipe)).toEqual(env);
    for (const name of Object.keys(setup.env).filter((name) => TEST_ONLY.includes(name)))
      expect(recipe).toContain(name);

    const files = Object.entries(setup.files);
    const json = codeBlocks(recipe, 'json').map((block) => JSON.parse(block) as unknown);
    expect(json).toHaveLength(files.length);
    files.forEach(([path, text], i) => {
      expect(recipe).toContain(`~/${path}`);
      expect(json[i]).toEqual(JSON.parse(text));
    });

    const command = setup.args.map((arg) => (arg.includes(' ') ? `"${arg}"` : arg)).join(' ');
    expect(recipe).toContain(`the test runs: ${AGENTS[agent].bin} ${command}`);
  });

  it('names the versions the test pins', () => {
    const pins = (JSON.parse(readFileSync(MANIFEST, 'utf8')) as { dependencies: Record<string, string> })
      .dependencies;
    const clients = section('Clients');
    for (const [name, agent] of [
      ['Claude Code', 'claude'],
      ['Gemini CLI', 'gemini'],
      ['opencode', 'opencode'],
      ['Codex CLI', 'codex'],
    ] as const)
      expect(clients).toContain(`${name} ${pins[AGENTS[agent].package]}`);
  });
});
