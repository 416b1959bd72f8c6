/**
 * The plugin's `iotedgegate` (plugins/inference/gstgate.c), the switch in front of each viewer's webrtcbin in the
 * WebRTC fan-out: open, rtph264pay's buffer lists leave it whole (valve splits them into single buffers); closed,
 * nothing passes but the sticky events: the caps and EOS reach downstream. Real GStreamer, counted by pad probes in
 * a python3-gi helper (test/support/gateLists.py).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { PLUGIN_DIR } from '../support/analysisEngine.js';

const SCRIPT = fileURLToPath(new URL('../../../test/support/gateLists.py', import.meta.url));

interface Counts {
  sink: { buffers: number; lists: number };
  src: { buffers: number; lists: number };
  eos: boolean;
  caps: string | null;
}

function cross(gate: string): Counts {
  const out = execFileSync('/usr/bin/python3', [SCRIPT, gate], { env: { ...process.env, GST_PLUGIN_PATH: PLUGIN_DIR }, timeout: 90_000 });
  return JSON.parse(out.toString()) as Counts;
}

describe('iotedgegate', () => {
  it('open: buffer lists and buffers pass as they came', () => {
    const c = cross('iotedgegate drop=false');
    assert.ok(c.eos, 'the stream ends');
    assert.ok(c.sink.lists >= 25, `rtph264pay pushed lists (${c.sink.lists})`);
    assert.deepEqual(c.src, c.sink, 'what left the gate is what came in, lists whole');
  });

  it('closed: no data, but the caps and EOS get through', () => {
    const c = cross('iotedgegate');
    assert.ok(c.eos, 'EOS passed the closed gate');
    assert.ok(c.sink.lists + c.sink.buffers > 25);
    assert.deepEqual(c.src, { buffers: 0, lists: 0 });
    assert.match(c.caps ?? '', /^application\/x-rtp/, 'the caps reached the sink');
  });

  it('valve, the fallback without the plugin, splits the lists (what the gate is for)', () => {
    const c = cross('valve drop=false');
    assert.ok(c.sink.lists >= 25);
    assert.equal(c.src.lists, 0);
    // Each list's packets leave one by one (the sink probe sees them too, as valve's default chain_list chains each).
    assert.ok(c.src.buffers >= 2 * c.sink.lists, `single buffers out (${c.src.buffers})`);
  });
});
