import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { emptyRow, type UsageLedger, type UsageRow } from '../state/usage-ledger.js';
import { PolicyTable } from '../teams/policies.js';
import { registerUsageRoutes } from './usage-routes.js';

const NOW = Date.UTC(2026, 11, 7, 12);

/** A ledger holding `held` (none by default) that remembers the days it was asked for. */
function emptyLedger(asked: Array<[string, string]>, held: UsageRow[] = []): UsageLedger {
  return {
    record: () => {},
    rows: (from, to) => {
      asked.push([from, to]);
      return Promise.resolve(held);
    },
    close: () => Promise.resolve(),
  };
}

const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function usage(query: string, held: UsageRow[] = [], secrets: string[] = []) {
  const asked: Array<[string, string]> = [];
  const app = Fastify();
  apps.push(app);
  const table = new PolicyTable([], {});
  const redactor = new Redactor(secrets);
  registerUsageRoutes(app, {
    ledger: emptyLedger(asked, held),
    policies: () => table,
    redactor: () => redactor,
    now: () => NOW,
  });
  const res = await app.inject({ method: 'GET', url: `/admin/usage?${query}` });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>(), text: res.body, asked };
}

describe('GET /admin/usage: secrets', () => {
  it('answers the key asked for and the models counted redacted, whatever the ledger holds', async () => {
    const secret = 'configured-proxy-key-0123456789';
    // As a usage file written before models were redacted would replay it.
    const row = {
      ...emptyRow('2026-12-07', { key: '', labels: [], backend: 'mock', model: secret }),
      requests: 1,
    };
    const byModel = await usage('group_by=model', [row], [secret]);
    expect(byModel.status).toBe(200);
    expect(byModel.body.groups).toEqual([expect.objectContaining({ model: 'mock:****', requests: 1 })]);
    const byKey = await usage(`group_by=key&key=${secret}`, [], [secret]);
    expect(byKey.body.key).toBe('****');
    for (const answer of [byModel, byKey]) expect(answer.text).not.toContain(secret);
  });
});

describe('GET /admin/usage: from and to', () => {
  it.each([
    ['a day', 'from=2026-02-28&to=2026-03-01', ['2026-02-28', '2026-03-01']],
    ['a leap day', 'from=2028-02-29&to=2028-02-29', ['2028-02-29', '2028-02-29']],
    ['a date-time, read to its UTC day', 'from=2026-02-28T23:30:00-02:00', ['2026-03-01', '2026-12-07']],
  ])('reads %s', async (_name, query, days) => {
    const { status, body, asked } = await usage(query);
    expect(status).toBe(200);
    expect([body.from, body.to]).toEqual(days);
    expect(asked).toEqual([days]);
  });

  it.each([
    'from=garbage',
    'from=2026-02-30',
    'to=2026-04-31',
    'from=2027-02-29',
    'from=2026-13-01',
    'from=2026-00-10',
    'to=2026-02-30T10:00:00Z',
  ])('refuses an impossible date (%s) as it refuses garbage, without reading the ledger', async (query) => {
    const { status, body, asked } = await usage(query);
    expect(status).toBe(400);
    expect(body).toEqual({
      error: expect.objectContaining({
        message: 'from and to must be dates (2026-12-01) or date-times',
      }) as unknown,
    });
    expect(asked).toEqual([]);
  });
});
