/**
 * The WebRTC fan-out's branch: a tee pad into a proxysink, read by the viewer's proxysrc. Without a queue of its own in
 * the branch, the proxysrc's queue is what stands between a stalled viewer and the tee that feeds every viewer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { allElements, asProxySrc, asQueue, Gst, parseLaunch, type GstElement } from '../../media/gst.js';
import { leakyProxySrc } from '../../media/WebRtcFanout.js';

Gst.init(null);

type WithLastSample = GstElement & { lastSample: InstanceType<typeof Gst.Sample> | null };

/**
 * A 100 fps producer teed to a fast branch and to a proxysink, and a viewer reading it that takes 100 ms a buffer;
 * how far (seconds of stream time) the fast branch got in 3 s.
 */
async function fastBranchAfterStall(leaky: boolean): Promise<number> {
  const producer = parseLaunch(
    'videotestsrc is-live=true ! video/x-raw,width=64,height=36,framerate=100/1 ! tee name=t allow-not-linked=true ' +
      '! queue ! fakesink name=fast sync=false  t. ! proxysink name=sink',
  );
  const viewer = parseLaunch('proxysrc name=src ! identity sleep-time=100000 ! fakesink sync=false');
  const src = (viewer as InstanceType<typeof Gst.Bin>).getByName('src')!;
  if (leaky) leakyProxySrc(src);
  asProxySrc(src).proxysink = (producer as InstanceType<typeof Gst.Bin>).getByName('sink');
  try {
    // The viewer first: a proxysrc in NULL answers FLUSHING, which the tee would return to the producer.
    viewer.setState(Gst.State.PLAYING);
    producer.setState(Gst.State.PLAYING);
    await sleep(3_000);
    const last = ((producer as InstanceType<typeof Gst.Bin>).getByName('fast') as WithLastSample).lastSample;
    return Number(last?.getBuffer()?.pts ?? 0n) / 1e9;
  } finally {
    producer.setState(Gst.State.NULL);
    viewer.setState(Gst.State.NULL);
  }
}

describe('WebRTC fan-out branch', () => {
  it('makes the queue inside a proxysrc leaky (500 buffers)', () => {
    const src = Gst.ElementFactory.make('proxysrc', null)!;
    leakyProxySrc(src);
    const queues = [...allElements(src)].filter((e) => e.getFactory()?.getName() === 'queue');
    assert.equal(queues.length, 1);
    assert.equal(asQueue(queues[0]!).leaky, 2);
    assert.equal(asQueue(queues[0]!).maxSizeBuffers, 500);
  });

  it('refuses an element without a queue inside', () => {
    assert.throws(() => leakyProxySrc(Gst.ElementFactory.make('identity', null)!), /no queue/);
  });

  it('a stalled viewer does not hold up the tee once its proxysrc is leaky (and does without)', async () => {
    // Without: the proxysrc's queue fills (1 s of stream), the tee blocks, the fast branch stops near 1 s.
    const held = await fastBranchAfterStall(false);
    const leaky = await fastBranchAfterStall(true);
    assert.ok(held < 2, `without a leaky queue the fast branch should stall; it reached ${held.toFixed(2)} s`);
    assert.ok(leaky > 2.5, `with a leaky queue the fast branch should keep up; it reached ${leaky.toFixed(2)} s of 3 s`);
  });
});
