/** A configuration problem the user must fix: printed on one line to stderr, exit code 1, no stack trace. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
