import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createActor, setup as machineSetup } from 'xstate';
import { probeTarget, sourceProbeLogic } from '../../actors/sourceProbe.js';

describe('source probe', () => {
  it('knows where to reach the usual camera schemes, and which it cannot probe', () => {
    assert.deepEqual(probeTarget('rtsp://user:pw@10.0.0.5/axis-media/media.amp'), { host: '10.0.0.5', port: 554 });
    assert.deepEqual(probeTarget('rtsp://10.0.0.5:8554/x'), { host: '10.0.0.5', port: 8554 });
    assert.deepEqual(probeTarget('rtsps://[2001:db8::1]/x'), { host: '2001:db8::1', port: 322 });
    assert.deepEqual(probeTarget('http://cam.local/mjpeg'), { host: 'cam.local', port: 80 });
    assert.equal(probeTarget('udp://239.0.0.1:5000'), null);
    assert.equal(probeTarget('srt://10.0.0.5:9000'), null);
    assert.equal(probeTarget('/dev/video0'), null);
  });

  it('says the source is reachable once a TCP connect to it succeeds', async () => {
    // A port that refuses first, then a server listens on it: the probe keeps trying and then reports.
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const events: string[] = [];
    const parent = machineSetup({ actors: { probe: sourceProbeLogic(20) } }).createMachine({
      invoke: { src: 'probe', input: { uri: `rtsp://u:p@127.0.0.1:${port}/live` } },
      on: { '*': { actions: ({ event }) => events.push(event.type) } },
    });
    const actor = createActor(parent).start();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(events, [], 'nothing while the port refuses');
    const back = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => back.listen(port, '127.0.0.1', resolve));
    const reached = await new Promise<string>((resolve) => {
      const check = setInterval(() => {
        if (events.length > 0) {
          clearInterval(check);
          resolve(events[0]!);
        }
      }, 10);
    });
    assert.equal(reached, 'SOURCE_REACHABLE');
    actor.stop();
    await new Promise<void>((resolve) => back.close(() => resolve()));
  });
});
