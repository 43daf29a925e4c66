import { commandForms, type Command, type SessionSettings } from './commands.js';

/** What the proxy answers to commands (README, "In-chat commands"): short, and always naming the scope. */

export function helpReply(prefix: string): string {
  return [
    'Proxy commands (they apply to this session only and never reach the model):',
    ...commandForms(prefix),
  ]
    .map((line, i) => (i === 0 ? line : `  ${line}`))
    .join('\n');
}

export function invalidReply(error: string, prefix: string): string {
  return `${error}. Nothing was changed and nothing was sent to the model.\n\n${helpReply(prefix)}`;
}

/** A configured route's chain by name (undefined for a name that is not a route). */
export type ChainOf = (name: string) => readonly string[] | undefined;

/** A model name as a reply shows it: a route's name with the chain it tries. */
function modelShown(model: string, chainOf: ChainOf | undefined): string {
  const chain = chainOf?.(model);
  return chain === undefined ? model : `${model} (route: tries ${chain.join(', then ')})`;
}

export function settingsReply(settings: SessionSettings, chainOf?: ChainOf): string {
  const lines: string[] = [];
  if (settings.model !== undefined) lines.push(`model: ${modelShown(settings.model, chainOf)}`);
  if (settings.temperature !== undefined) lines.push(`temperature: ${settings.temperature}`);
  if (settings.reasoning !== undefined) lines.push(`reasoning: ${settings.reasoning}`);
  if (settings.oneoff !== undefined) lines.push(`next request only: ${modelShown(settings.oneoff, chainOf)}`);
  return lines.length === 0
    ? "This session has no settings: the client's own choices apply."
    : `This session's settings:\n${lines.map((line) => `  ${line}`).join('\n')}`;
}

/** One line confirming what a command did (help and session answer with their own text). */
export function confirmation(
  command: Command,
  prefix: string,
  settings: SessionSettings,
  chainOf?: ChainOf,
): string {
  switch (command.name) {
    case 'help':
      return helpReply(prefix);
    case 'session':
      return settingsReply(settings, chainOf);
    case 'set':
      return `Set for this session: ${Object.entries(command.values)
        .map(([name, value]) => `${name}=${String(value)}`)
        .join(', ')}.`;
    case 'unset':
      return `Unset for this session: ${command.settings.join(', ')}.`;
    case 'oneoff':
      return `The next request goes to ${command.model}.`;
    case 'route':
      return `This session now uses route ${modelShown(command.route, chainOf)}.`;
  }
}
