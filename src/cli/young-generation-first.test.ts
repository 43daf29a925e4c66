import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('the young generation cap at start', () => {
  it('is the first module main.ts imports, so it runs before the others are evaluated', () => {
    const source = readFileSync(new URL('./main.ts', import.meta.url), 'utf8');
    const imports = source.match(/^import\b.*$/gm) ?? [];
    expect(imports[0]).toBe("import './young-generation-first.js';");
    expect(source).not.toMatch(/capYoungGeneration\(/);
  });
});
