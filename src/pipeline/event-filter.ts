import { StringDecoder } from 'node:string_decoder';

/**
 * Drops a backend's stream events whose data is not JSON (README, Routes and failover): such an event would
 * break the client's SDK mid-answer. Events pass on whole, as soon as their blank line arrives; `[DONE]`,
 * comments and events without data pass as they are. `dropped` counts what was left out.
 */
export class JsonEventFilter {
  dropped = 0;
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  /** The complete events in what has arrived so far, the bad ones left out ('' when none is complete). */
  push(chunk: Uint8Array): string {
    const text = this.pending + this.decoder.write(chunk as Buffer);
    const cut = lastBoundary(text);
    if (cut < 0) {
      this.pending = text;
      return '';
    }
    this.pending = text.slice(cut);
    return this.keep(text.slice(0, cut));
  }

  /** What is left when the stream ends: a last event without its blank line is checked the same way. */
  end(): string {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    return rest.trim() === '' ? rest : this.keep(rest);
  }

  private keep(events: string): string {
    // The common case — every event JSON — returns the text as it came, joined by nothing new.
    let out = '';
    let start = 0;
    const re = /\r?\n\r?\n/g;
    for (let m = re.exec(events); ; m = re.exec(events)) {
      const end = m === null ? events.length : m.index + m[0].length;
      const event = events.slice(start, end);
      if (event !== '') {
        if (isValidEvent(event)) out += event;
        else this.dropped += 1;
      }
      if (m === null) break;
      start = end;
    }
    return out;
  }
}

/** The end of the last complete event (after its blank line), or -1. */
function lastBoundary(text: string): number {
  const lf = text.lastIndexOf('\n\n');
  const crlf = text.lastIndexOf('\r\n\r\n');
  if (lf < 0 && crlf < 0) return -1;
  return lf + 2 > crlf + 4 ? lf + 2 : crlf + 4;
}

function isValidEvent(event: string): boolean {
  let data: string | null = null;
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith('data:')) {
      const value = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
      data = data === null ? value : `${data}\n${value}`;
    }
  }
  if (data === null) return true;
  const trimmed = data.trim();
  if (trimmed === '[DONE]') return true;
  try {
    JSON.parse(trimmed);
    return true;
  } catch {
    return false;
  }
}
