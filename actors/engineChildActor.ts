import { fork, type ChildProcess } from 'node:child_process';
import { fromCallback } from 'xstate';
import { gstPluginPath } from '../analysis/paths.js';
import { isEngineEvent, type EngineCommand, type EngineEvent } from '../ipc/protocol.js';
import type { EngineProcessCommand, EngineProcessEvent } from '../machines/engine.js';
import { OutputLines } from './outputLines.js';

/** The compiled engine entry point (this file is dist/actors/engineChildActor.js). */
export const ENGINE_ENTRY = new URL('../media/main.js', import.meta.url);

/** How the process actor talks to its owner: engine events out, and a way to send commands in. */
export interface EngineChildHooks {
  /** Every event from the engine, `ready` included. */
  onEvent(event: EngineEvent): void;
  /** A line the engine wrote on stdout/stderr (GStreamer's own logging, GST_DEBUG): the owner redacts it. */
  onOutput(line: string, stream: 'stdout' | 'stderr'): void;
  /** The process is there to talk to (or gone: null). */
  onChannel(send: ((command: EngineCommand) => void) | null): void;
  /** Extra environment for the engine. */
  env?: NodeJS.ProcessEnv;
}

/** HEARD goes to the machine at most this often: one event per IPC message would be wasted work. */
const HEARD_EVERY_MS = 250;

/**
 * The media engine as an actor: forks it, reports READY and EXIT to the engine machine, relays IPC to the hooks.
 * Stopping the actor kills the process (the machine asks for a graceful SHUTDOWN before that).
 */
export function engineChildLogic(hooks: EngineChildHooks) {
  return fromCallback<EngineProcessCommand>(({ sendBack, receive }) => {
    let exited = false;
    const env = { ...process.env, ...hooks.env };
    const child: ChildProcess = fork(ENGINE_ENTRY, [], {
      // Its own process group: Ctrl-C in a terminal reaches the control plane, which stops the engine in order.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Colour codes would end up in the JSON log lines. The module's own plugins (the `inference` element) come
      // first on GStreamer's plugin path, the user's GST_PLUGIN_PATH after them.
      // Two malloc arenas, not one per thread (GStreamer runs ~70): unset, the engine's RSS grew about 1 MB per camera
      // drop and per swap (bench/soak.ts); with it, those steps are gone (a slower, steady growth while WebRTC viewers
      // are connected remains: see the soak). A value the user sets wins.
      env: { GST_DEBUG_NO_COLOR: '1', MALLOC_ARENA_MAX: '2', ...env, GST_PLUGIN_PATH: gstPluginPath(env) },
      serialization: 'json',
      // V8 does not see the size of GStreamer objects behind JS wrappers (samples, RTSP clients): the engine
      // collects garbage on a timer so they are released (sockets closed, buffers freed) in time.
      execArgv: [...process.execArgv, '--expose-gc'],
    });
    const send = (command: EngineCommand) => {
      if (child.connected) child.send(command);
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream];
      if (!source) continue;
      const lines = new OutputLines((line) => hooks.onOutput(line, stream));
      source.on('data', (chunk: Buffer) => lines.push(chunk));
      source.on('end', () => lines.end());
    }
    // Liveness for the machine's hang watchdog: any message is a sign of life.
    let lastHeard = 0;
    child.on('message', (message: unknown) => {
      const now = Date.now();
      if (now - lastHeard >= HEARD_EVERY_MS) {
        lastHeard = now;
        sendBack({ type: 'HEARD' } satisfies EngineProcessEvent);
      }
      if (!isEngineEvent(message)) {
        hooks.onOutput(`ignored a malformed message from the media engine: ${JSON.stringify(message)?.slice(0, 200)}`, 'stderr');
        return;
      }
      if (message.type === 'ready') {
        hooks.onChannel(send);
        sendBack({ type: 'READY', pid: message.pid } satisfies EngineProcessEvent);
      }
      hooks.onEvent(message);
    });
    child.on('error', (error) => {
      hooks.onOutput(`engine process error: ${error.message}`, 'stderr');
    });
    child.on('exit', (code, signal) => {
      exited = true;
      hooks.onChannel(null);
      sendBack({ type: 'EXIT', code, signal } satisfies EngineProcessEvent);
    });
    receive((command) => {
      if (command.type === 'SHUTDOWN') send({ type: 'shutdown', timeoutMs: command.timeoutMs });
      else if (command.type === 'PING') send({ type: 'ping' });
    });
    return () => {
      hooks.onChannel(null);
      if (!exited) child.kill('SIGKILL');
    };
  });
}
