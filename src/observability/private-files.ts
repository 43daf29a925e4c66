import { constants, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';

// Log and capture files hold what clients and backends said (redacted, but still private), the keys file
// holds keys: they are created readable by the proxy's user only, never written through a symbolic link
// someone planted at their path, and a file or directory others can read is reported at startup
// (README, Deployment).

/** Mode of every file the proxy creates: read and write for its own user only. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of a directory the proxy creates for one of them. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Flags for opening a log or capture file to append: created if missing (with {@link PRIVATE_FILE_MODE}),
 * and refused (ELOOP) when the path is a symbolic link.
 */
export const APPEND_NOFOLLOW =
  constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/** What the usual reasons a file cannot be opened to append mean, in words an operator can act on. */
const OPEN_FAILURES: Readonly<Record<string, string>> = {
  EACCES: 'permission denied (the proxy runs as a user that may not write there)',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory (give the path of a file in it)',
  ENOTDIR: 'a part of its path is a file, not a directory',
  // mkdir's answer when a part of the path exists as a file.
  EEXIST: 'a part of its path is a file, not a directory',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  ENOENT: 'a directory on its path cannot be created there',
};

/** The error opening `path` gave, in words an operator can act on (a refused symbolic link included). */
export function describeOpenFailure(what: string, path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
  if (code === 'ELOOP') {
    return `${what} ${path} is a symbolic link: refusing to write through it (give the real path)`;
  }
  const meaning = OPEN_FAILURES[code];
  return `${what} ${path} cannot be opened (${code}${meaning === undefined ? '' : `: ${meaning}`})`;
}

/**
 * `mkdir -p` with {@link PRIVATE_DIR_MODE}, one level at a time: Node's recursive `mkdirSync` never returns
 * under a pseudo file system that refuses new entries with ENOENT (`/proc/nope/x` loops for ever), where
 * this throws that ENOENT.
 */
export function makePrivateDirectory(directory: string): void {
  const missing: string[] = [];
  for (let dir = directory; ; dir = dirname(dir)) {
    try {
      statSync(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
      missing.push(dir);
    }
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      // Made meanwhile by someone else (another replica starting): as good as made here.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
    }
  }
}

/**
 * Opens `path` to append, as {@link APPEND_NOFOLLOW} says (its directory made first, private), and returns
 * the descriptor; a startup error naming `what` when it cannot be.
 */
export function openPrivateAppend(what: string, path: string): number {
  try {
    makePrivateDirectory(dirname(resolve(path)));
    return openSync(path, APPEND_NOFOLLOW, PRIVATE_FILE_MODE);
  } catch (err) {
    throw new ConfigError(describeOpenFailure(what, path, err));
  }
}

/** Group and other permission bits. */
const OTHERS = 0o077;

/** "group- and world-readable" and the like, from a mode's group and other bits. */
function who(mode: number): string {
  const group = (mode & 0o070) !== 0;
  const world = (mode & 0o007) !== 0;
  return group && world ? 'group and others' : group ? 'its group' : 'others';
}

export interface PathToCheck {
  /** What it is, as the operator configured it: `log file (--log-file)`. */
  what: string;
  path: string;
  /** Also check the directory it is in. */
  directory: boolean;
}

/**
 * One warning per existing file (and, where asked, its directory) that other users can access: nothing
 * is changed, the operator decides. Returns the messages (for the startup log).
 */
export function loosePermissionWarnings(paths: readonly PathToCheck[]): string[] {
  const warnings: string[] = [];
  const seen = new Set<string>();
  const check = (what: string, path: string): void => {
    if (seen.has(path)) return;
    seen.add(path);
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch {
      return; // Missing or unreadable: nothing others can read there either.
    }
    if ((mode & OTHERS) === 0) return;
    const octal = (mode & 0o777).toString(8).padStart(3, '0');
    warnings.push(
      `${what} ${path} can be accessed by ${who(mode)} (mode ${octal}); restrict it: chmod ${
        what.startsWith('directory') ? '700' : '600'
      } ${path}`,
    );
  };
  for (const { what, path, directory } of paths) {
    check(what, path);
    if (directory) check(`directory of the ${what}`, dirname(resolve(path)));
  }
  return warnings;
}
