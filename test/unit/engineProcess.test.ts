import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { describe, it } from 'node:test';
import { ENGINE_ENTRY } from '../../actors/engineChildActor.js';

/** The engine process forked as the control plane forks it; this test process never loads node-gtk itself. */

describe('the media engine process', () => {
  it('logs and ignores a malformed command, and still answers ping at once', async () => {
    const child = fork(ENGINE_ENTRY, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'json' });
    const events: Array<{ type: string; level?: string; msg?: string }> = [];
    const next = (match: (e: { type: string; level?: string; msg?: string }) => boolean) =>
      new Promise<{ type: string; level?: string; msg?: string }>((resolve, reject) => {
        const found = events.find(match);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no matching engine event; got ${JSON.stringify(events.filter((e) => e.type !== 'stats'))}`)), 20_000);
        child.on('message', function onMessage(message: { type: string }) {
          if (!match(message)) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(message);
        });
      });
    child.on('message', (message: { type: string }) => events.push(message));
    try {
      await next((e) => e.type === 'ready');
      for (const bad of [{ type: 'start', pipeline: 'main' }, { type: 'webrtc-signal', peer: 'p1', signal: null }, { type: 'stop' }, 'hello']) child.send(bad);
      child.send({ type: 'ping' });
      await next((e) => e.type === 'pong');
      const logged = events.filter((e) => e.type === 'log' && /ignored a malformed command/.test(e.msg ?? ''));
      assert.equal(logged.length, 4, JSON.stringify(logged));
      assert.match(logged[0]!.msg ?? '', /\{"type":"start","pipeline":"main"\}/, 'the log shows what came');
      assert.equal(events.some((e) => e.type === 'error' || e.type === 'stopped'), false, 'nothing ran');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'shutdown', timeoutMs: 1_000 });
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
