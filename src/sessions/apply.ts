import type { Command, SessionSettings } from './commands.js';

/** The settings after a command: a new object, the old one untouched. */
export function applyCommand(settings: SessionSettings, command: Command): SessionSettings {
  switch (command.name) {
    case 'set':
      return { ...settings, ...command.values };
    case 'unset': {
      const next = { ...settings };
      for (const name of command.settings) delete next[name];
      return next;
    }
    case 'oneoff':
      return { ...settings, oneoff: command.model };
    case 'route':
      return { ...settings, model: command.route };
    case 'help':
    case 'session':
      return settings;
  }
}

/** The models a command names, to be checked before anything is changed. */
export function modelsNamed(command: Command): string[] {
  switch (command.name) {
    case 'set':
      return command.values.model === undefined ? [] : [command.values.model];
    case 'oneoff':
      return [command.model];
    case 'route':
      return [command.route];
    default:
      return [];
  }
}
