import type {
  CaptureRecorder,
  CaptureDirection,
  CaptureStream,
  EventFields,
  RequestRecorder,
  StreamLeg,
} from '../capture/events.js';
import type { ChatExchange } from './exchange.js';

/** The capture of one chat request: the fields every event shares come from the exchange and the route. */
export class RequestCapture {
  private readonly events: RequestRecorder;

  constructor(
    recorder: CaptureRecorder,
    request: Pick<ChatExchange, 'id' | 'headers' | 'ip' | 'authKeyName'>,
    backend: string,
    model: string,
    providerKeyName: string | null,
  ) {
    const userAgent = request.headers['user-agent'];
    const keyName: { proxy?: string; provider?: string } = {};
    if (request.authKeyName) keyName.proxy = request.authKeyName;
    if (providerKeyName) keyName.provider = providerKeyName;
    this.events = recorder.forRequest({
      request_id: request.id,
      client:
        typeof userAgent === 'string'
          ? { address: request.ip, user_agent: userAgent }
          : { address: request.ip },
      backend,
      model,
      key_name: keyName,
    });
  }

  record(direction: CaptureDirection, fields: EventFields): void {
    this.events.record(direction, fields);
  }

  /** Tees a byte stream into a capture leg as it flows; the bytes pass on untouched. */
  async *tee<T extends Uint8Array | string>(
    source: AsyncIterable<T>,
    leg: StreamLeg,
    metadata: Record<string, unknown>,
  ): AsyncGenerator<T> {
    const stream: CaptureStream = this.events.openStream(leg, metadata);
    const decoder = new TextDecoder();
    let failure: string | undefined;
    try {
      for await (const chunk of source) {
        stream.chunk(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
        yield chunk;
      }
    } catch (err) {
      failure = (err as { code?: string }).code ?? 'stream_error';
      throw err;
    } finally {
      const rest = decoder.decode();
      if (rest) stream.chunk(rest);
      stream.end(failure ? { error: failure } : {});
    }
  }
}
