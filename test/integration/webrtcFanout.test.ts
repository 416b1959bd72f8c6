/**
 * The WebRTC fan-out with real GStreamer: a producer feeding a SampleHub, the fan-out's payloader and tee, and
 * viewers' webrtcbins inside the fan-out's pipeline behind a valve each. No viewer connects here (no browser): these
 * are the branch's own promises. A viewer that never gets its DTLS up, or that is torn down while the tee pushes,
 * never holds up the tee that feeds every viewer, and what a viewer's webrtcbin posts is that viewer's, not the
 * fan-out's. Browser viewers on the fan-out are in webrtcPeer.test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GLib, Gst, parseLaunch, type GstElement, type GstMessage, type GstPipeline } from '../../media/gst.js';
import { SampleHub } from '../../media/SampleHub.js';
import { WebRtcFanout } from '../../media/WebRtcFanout.js';

Gst.init(null);

const PRODUCER =
  'videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! ' +
  'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse config-interval=-1 ! appsink name=video';

/** Waits (bounded) for `ok`, checked every 20 ms; the value it returned. */
async function until<T>(what: string, ok: () => T | null | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = ok();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** RTP buffers that left the fan-out's tee into `probe`'s fakesink (signal-handoffs off: counted by GStreamer). */
function rtpOut(probe: GstElement): bigint {
  const stats = (probe as GstElement & { stats: InstanceType<typeof Gst.Structure> }).stats;
  const [ok, rendered] = stats.getUint64('rendered');
  return ok ? BigInt(rendered) : 0n;
}

describe('WebRTC fan-out (viewers\' webrtcbins in its pipeline)', () => {
  let producer: GstPipeline;
  let hub: SampleHub;
  let detachProducer: () => void;
  const loop = GLib.MainLoop.new(null, false);

  before(async () => {
    // Bus watches need GLib's loop; run from a callback, Node's loop runs inside it (as in the engine).
    setImmediate(() => loop.run());
    producer = parseLaunch(PRODUCER) as GstPipeline;
    hub = new SampleHub();
    detachProducer = hub.attachProducer(producer.getByName('video')!);
    producer.setState(Gst.State.PLAYING);
    await until('the producer\'s caps', () => hub.stats().video?.caps);
  });

  after(() => {
    detachProducer();
    producer.setState(Gst.State.NULL);
    loop.quit();
  });

  /** A fan-out with a counting fakesink on its tee, standing in for a viewer that takes everything. */
  function fanoutWithProbe(): { fanout: WebRtcFanout; probe: GstElement } {
    const fanout = new WebRtcFanout(hub);
    const probe = Gst.ElementFactory.make('fakesink', null)!;
    (probe as GstElement & { sync: boolean; async: boolean }).sync = false;
    (probe as GstElement & { sync: boolean; async: boolean }).async = false;
    fanout.pipeline.add(probe);
    probe.syncStateWithParent();
    fanout.pipeline.getByName('t')!.link(probe);
    return { fanout, probe };
  }

  it('keeps feeding the tee while viewers that never connect sit behind their closed valves', async () => {
    const { fanout, probe } = fanoutWithProbe();
    try {
      await until('RTP out of the tee', () => rtpOut(probe) > 0n);
      const viewers: GstElement[] = [];
      for (let i = 0; i < 5; i++) {
        const webrtcbin = Gst.ElementFactory.make('webrtcbin', `webrtcbin-test-${i}`)!;
        assert.equal(fanout.attach(webrtcbin, () => {}), true);
        fanout.link(webrtcbin);
        viewers.push(webrtcbin);
      }
      assert.equal(fanout.branches, 5);
      // 30 fps: a second of stream must pass the tee with five unconnected webrtcbins on it.
      const before = rtpOut(probe);
      await until('30 more RTP buffers past five waiting viewers', () => rtpOut(probe) >= before + 30n, 10_000);
      // Torn down as a peer does: off the tee, locked, NULL, removed; the tee goes on.
      for (const webrtcbin of viewers) {
        fanout.unlink(webrtcbin);
        webrtcbin.setLockedState(true);
        webrtcbin.setState(Gst.State.NULL);
        fanout.detach(webrtcbin);
        assert.equal(webrtcbin.getParent(), null);
      }
      assert.equal(fanout.branches, 0);
      const afterTeardown = rtpOut(probe);
      await until('RTP past the tee after the teardown', () => rtpOut(probe) >= afterTeardown + 30n, 10_000);
      assert.equal(fanout.failure, null);
    } finally {
      fanout.close();
    }
  });

  it('stalls the tee when a valve opens before DTLS (why a viewer opens on connected), and recovers when it leaves', async () => {
    const { fanout, probe } = fanoutWithProbe();
    try {
      const webrtcbin = Gst.ElementFactory.make('webrtcbin', 'webrtcbin-open')!;
      assert.equal(fanout.attach(webrtcbin, () => {}), true);
      fanout.link(webrtcbin);
      const flowing = rtpOut(probe);
      await until('RTP past a closed valve', () => rtpOut(probe) >= flowing + 5n, 10_000);
      // transportsendbin holds buffers back until its DTLS is up: the tee's thread waits in there.
      fanout.open(webrtcbin);
      const opened = rtpOut(probe);
      // Stalled: no buffer in half a second (a 30 fps stream); bounded by the assertion below.
      let last = rtpOut(probe);
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const now = rtpOut(probe);
        if (now === last) break;
        assert.ok(now < opened + 60n, `the tee kept going (${now - opened} buffers) past a viewer without DTLS`);
        last = now;
      }
      // Torn down as a peer does: off the tee first, then NULL (which ends the wait), then out of the pipeline.
      fanout.unlink(webrtcbin);
      webrtcbin.setLockedState(true);
      webrtcbin.setState(Gst.State.NULL);
      fanout.detach(webrtcbin);
      const afterTeardown = rtpOut(probe);
      await until('RTP past the tee again after the viewer left', () => rtpOut(probe) >= afterTeardown + 30n, 10_000);
      assert.equal(fanout.failure, null);
    } finally {
      fanout.close();
    }
  });

  it('hands what a viewer\'s webrtcbin posts to that viewer, and an error there does not fail the fan-out', async () => {
    const { fanout } = fanoutWithProbe();
    const failed: string[] = [];
    fanout.on('failed', (reason) => failed.push(reason));
    try {
      const mine: GstMessage[] = [];
      const theirs: GstMessage[] = [];
      const a = Gst.ElementFactory.make('webrtcbin', 'webrtcbin-a')!;
      const b = Gst.ElementFactory.make('webrtcbin', 'webrtcbin-b')!;
      fanout.attach(a, (message) => mine.push(message));
      fanout.attach(b, (message) => theirs.push(message));
      const error = Gst.Message.newError(a, GLib.Error.newLiteral(Gst.coreErrorQuark(), Gst.CoreError.FAILED, 'viewer a broke'), 'test');
      a.postMessage(error);
      const got = await until('the error at viewer a', () => mine.find((m) => m.type === Gst.MessageType.ERROR));
      assert.equal(got.parseError()[0].message, 'viewer a broke');
      assert.equal(theirs.some((m) => m.type === Gst.MessageType.ERROR), false);
      // The bus is in order: once b's message is in, a's error was handled and a failure would have been emitted
      // (on the next tick: one more turn of the loop).
      b.postMessage(Gst.Message.newApplication(b, Gst.Structure.newEmpty('after-error')));
      await until('b\'s message after a\'s error', () => theirs.some((m) => m.type === Gst.MessageType.APPLICATION));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(failed, []);
      assert.equal(fanout.failure, null);
      for (const webrtcbin of [a, b]) {
        fanout.unlink(webrtcbin);
        webrtcbin.setLockedState(true);
        webrtcbin.setState(Gst.State.NULL);
        fanout.detach(webrtcbin);
      }
    } finally {
      fanout.close();
    }
  });
});

