import { describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { MAX_MODEL_LABEL_LENGTH, ModelLabels, OTHER_MODEL } from './model-labels.js';

describe('model labels', () => {
  it('name other models by their own name up to the cap, then `other`; known ones always by theirs', () => {
    const labels = new ModelLabels({
      known: (backend, model) => backend === 'openai' && model === 'gpt-4o',
      maxOthers: 2,
    });
    expect(labels.of('mock', 'a')).toBe('a');
    expect(labels.of('mock', 'b')).toBe('b');
    expect(labels.of('mock', 'c')).toBe(OTHER_MODEL);
    // Admitted names stay admitted; the cap is per backend and model.
    expect(labels.of('mock', 'a')).toBe('a');
    expect(labels.of('other-backend', 'a')).toBe(OTHER_MODEL);
    expect(labels.of('openai', 'gpt-4o')).toBe('gpt-4o');
    expect(labels.of('mock', 'gpt-4o')).toBe(OTHER_MODEL);
  });

  it('count `other` and over-long names as `other`, taking no place under the cap', () => {
    const labels = new ModelLabels({ maxOthers: 1 });
    expect(labels.of('mock', OTHER_MODEL)).toBe(OTHER_MODEL);
    expect(labels.of('mock', 'x'.repeat(MAX_MODEL_LABEL_LENGTH + 1))).toBe(OTHER_MODEL);
    expect(labels.of('mock', 'x'.repeat(MAX_MODEL_LABEL_LENGTH))).toBe('x'.repeat(MAX_MODEL_LABEL_LENGTH));
  });

  it("label a breaker's element by its backend and its model's label", () => {
    const labels = new ModelLabels({ maxOthers: 1 });
    expect(labels.ofElement('openai:first')).toBe('openai:first');
    expect(labels.ofElement('openai:second:with-colon')).toBe('openai:other');
    expect(labels.ofElement('openai:first')).toBe('openai:first');
  });

  it('redact a secret sent as a model name, in the label and where the name is written', () => {
    const secret = 'configured-key-0123456789abcdef';
    let redactor = new Redactor([secret]);
    const labels = new ModelLabels({ redactor: () => redactor, maxOthers: 10 });
    expect(labels.of('mock', secret)).toBe('****');
    expect(labels.written(secret)).toBe('****');
    expect(labels.of('mock', 'sk-proj-abcdefghijklmnopqrstuvwxyz0123')).toBe('sk-proj-****');
    expect(labels.written(`prefix-${secret}`)).toBe('prefix-****');
    // A short configured secret, as the whole name.
    redactor = new Redactor(['ab']);
    expect(labels.of('mock', 'ab')).toBe('****');
    // Keys rotated: what was judged before is judged again.
    redactor = new Redactor([]);
    expect(labels.of('mock', secret)).toBe(secret);
    expect(labels.written(secret)).toBe(secret);
  });
});
