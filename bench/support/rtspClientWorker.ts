/**
 * A process of light RTSP viewers (bench/support/RtspClient.ts), driven by {@link RtspClients} over the fork IPC
 * channel, so that the viewers' CPU is measured apart from the benchmark's and can be spread over processes.
 *
 *   in:  {op: 'open', url, n, transport, batch}   -> {op: 'opened', opened, error}
 *        {op: 'counts'}                           -> {op: 'counts', frames: number[], bytes: number[], disconnected, at}
 *        {op: 'close'}                            -> {op: 'closed'} (and the process exits)
 */
import { RtspClient, type RtspTransport } from './RtspClient.js';

type Command = { op: 'open'; url: string; n: number; transport: RtspTransport; batch: number } | { op: 'counts' } | { op: 'close' };

const clients: RtspClient[] = [];
const reply = (message: Record<string, unknown>) => process.send?.(message);

async function open(command: Extract<Command, { op: 'open' }>): Promise<void> {
  let opened = 0;
  try {
    for (let i = 0; i < command.n; i += command.batch) {
      const batch = Array.from({ length: Math.min(command.batch, command.n - i) }, () => new RtspClient(command.url, { transport: command.transport }));
      await Promise.all(batch.map((c) => c.start(30_000)));
      clients.push(...batch);
      opened += batch.length;
    }
    reply({ op: 'opened', opened, error: null });
  } catch (error) {
    reply({ op: 'opened', opened, error: (error as Error).message });
  }
}

process.on('message', (command: Command) => {
  if (command.op === 'open') void open(command);
  else if (command.op === 'counts') {
    reply({ op: 'counts', frames: clients.map((c) => c.frames), bytes: clients.map((c) => c.bytes), disconnected: clients.filter((c) => c.disconnected).length, at: performance.now() });
  } else if (command.op === 'close') {
    for (const c of clients) c.close();
    reply({ op: 'closed' });
    setTimeout(() => process.exit(0), 50);
  }
});
process.on('disconnect', () => process.exit(0));
