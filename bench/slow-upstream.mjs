// The many-streams row's upstream: the fake provider (test/fake-provider) answering streams slowly, as a
// model generating tokens does. A request whose model names `fault-drip` is answered in SLOW_CHUNKS pieces
// SLOW_GAP_MS apart; any other model at once. Nothing is recorded (a long run must not grow it).
// Run as a child with an IPC channel: it sends {port} once listening.
import { startFakeProvider } from '../test/fake-provider/index.mjs';

const provider = await startFakeProvider({
  port: 0,
  keepAliveTimeout: 60_000,
  record: false,
  chunks: Number(process.env.SLOW_CHUNKS ?? 20),
  dripMs: Number(process.env.SLOW_GAP_MS ?? 500),
});
process.send?.({ port: provider.port });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
process.on('disconnect', () => process.exit(0));
