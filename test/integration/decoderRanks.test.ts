import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseAnalysisSettings, tapSpecOf } from '../../config/analysis.js';
import { AnalysisEngine, type HarnessEvent } from '../support/analysisEngine.js';
import { clip720p30, clipSource } from '../support/analysisMedia.js';

type Ranks = Extract<HarnessEvent, { type: 'ranks' }>;
type Tap = Extract<HarnessEvent, { type: 'analysis-tap' }>;

describe('the decoder setting', () => {
  let engine: AnalysisEngine;
  let id = 0;
  /** The tap's port before the decoder changed. */
  let port: number | null = null;
  const ranks = async (command: Omit<Extract<Parameters<AnalysisEngine['send']>[0], { type: 'ranks' }>, 'id' | 'type'>): Promise<Ranks> => {
    const mine = ++id;
    engine.send({ type: 'ranks', id: mine, ...command });
    return engine.waitFor((e): e is Ranks => e.type === 'ranks' && e.id === mine);
  };
  const decoderPicked = (from: number) => engine.waitFor((e): e is Tap => e.type === 'analysis-tap' && e.decoder !== null, 20_000, from);
  const [tap] = parseAnalysisSettings({ analyzers: { cam: { stream: 'video', fps: 2 } } }).analyzers.map(tapSpecOf);

  before(async () => {
    engine = await AnalysisEngine.start();
  });
  after(async () => engine?.stop());

  it('raises a present family above the software decoders, and decodebin picks it', async () => {
    // No GPU here: stand a present decoder (openh264dec, rank marginal) in for the nvcodec family.
    const result = await ranks({ choice: 'nvcodec', families: { nvcodec: '^openh264dec$', vaapi: '^$', v4l2: '^$' }, factories: ['openh264dec', 'avdec_h264'] });
    assert.deepEqual(result.result.raised, ['openh264dec']);
    assert.ok(result.ranks.openh264dec! > result.ranks.avdec_h264!, JSON.stringify(result.ranks));
    const from = engine.events.length;
    engine.send({ type: 'analysis', taps: [tap!], decoder: 'auto' });
    engine.send({ type: 'start', pipeline: 'main', launch: `${clipSource(clip720p30(20))} ! appsink name=video` });
    const picked = await decoderPicked(from);
    assert.equal(picked.decoder, 'openh264dec');
    port = picked.port;
  });

  it('with "software" puts every hardware decoder below the software ones, restores the rank it changed, and decodebin picks avdec_h264', async () => {
    const from = engine.events.length;
    engine.send({ type: 'analysis', taps: [tap!], decoder: 'software' });
    const applied = await engine.waitFor((e): e is Extract<HarnessEvent, { type: 'analysis-decoder' }> => e.type === 'analysis-decoder', 10_000, from);
    assert.equal(applied.choice, 'software');
    const after = await ranks({ choice: 'software', factories: ['openh264dec', 'avdec_h264'] });
    assert.equal(after.ranks.openh264dec, 64, 'back to its own rank (marginal)');
    for (const [name, rank] of Object.entries(after.hardware)) assert.ok(rank < after.ranks.avdec_h264!, `${name} at ${rank}`);
    assert.deepEqual(after.result.lowered.sort(), Object.keys(after.hardware).sort());
    const picked = await decoderPicked(from);
    assert.equal(picked.decoder, 'avdec_h264');
    assert.equal(picked.port, port, 'the rebuilt tap kept its socket');
  });

  it('says which family it could not find', async () => {
    const result = await ranks({ choice: 'vaapi', factories: [] });
    assert.deepEqual(result.result.raised, []);
    assert.deepEqual(result.result.missing, ['vaapi']);
    await ranks({ choice: 'auto', factories: [] });
  });
});
