// Prints the README's configuration reference from the config schema (the one source of truth).
// Usage: npm run build && node scripts/config-reference.mjs
import { ConfigSchema, CONFIG_FILE_SETTING, EXTRA_ENV_HELP, HELP_GROUPS } from '../dist/config/schema.js';
import { SETTINGS } from '../dist/config/settings.js';

const defaults = ConfigSchema.parse({});
const at = (key) => key.split('.').reduce((node, part) => node?.[part], defaults);
const show = (value) =>
  value === undefined || (Array.isArray(value) && value.length === 0)
    ? '—'
    : `\`${Array.isArray(value) ? value.join(',') : value}\``;

const lines = [];
for (const group of HELP_GROUPS) {
  lines.push(
    `#### ${group}`,
    '',
    '| CLI flag | Env var | YAML key | Default | Meaning |',
    '|---|---|---|---|---|',
  );
  if (group === CONFIG_FILE_SETTING.group) {
    lines.push(
      `| \`${CONFIG_FILE_SETTING.flag} ${CONFIG_FILE_SETTING.arg}\` | \`${CONFIG_FILE_SETTING.env}\` | — | — | ${CONFIG_FILE_SETTING.help} |`,
    );
  }
  for (const s of SETTINGS.filter((x) => x.meta.group === group)) {
    const m = s.meta;
    const flags =
      m.kind === 'bool'
        ? [m.flag, m.offFlag]
            .filter(Boolean)
            .map((f) => `\`${f}\``)
            .join(' / ')
        : `\`${m.flag} ${m.arg ?? 'VALUE'}\``;
    lines.push(
      `| ${flags} | ${m.env ? `\`${m.env}\`` : '—'} | \`${s.key}\` | ${show(at(s.key))} | ${m.help} |`,
    );
  }
  for (const e of EXTRA_ENV_HELP.filter((x) => x.group === group)) {
    lines.push(
      `| — | ${e.env
        .split(', ')
        .map((v) => `\`${v}\``)
        .join(', ')} | — | — | ${e.help} |`,
    );
  }
  lines.push('');
}
process.stdout.write(lines.join('\n'));
