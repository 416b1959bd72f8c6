import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CenterNetDetector, type RuntimeName } from '../../analysis/centernet/CenterNetDetector.js';
import type { Frame } from '../../analysis/types.js';
import { photoPath } from '../support/analysisMedia.js';

/** A photo decoded and scaled by GStreamer exactly as a tap does it (fit 320x320, aspect kept, RGB). */
function frameOf(name: 'astronaut' | 'motorcycle', width: number, height: number): Frame {
  const launch = `filesrc location=${photoPath(name)} ! pngdec ! videoconvert ! videoscale ! video/x-raw,format=RGB,width=${width},height=${height},pixel-aspect-ratio=1/1 ! fdsink fd=1`;
  const data = execFileSync('gst-launch-1.0', ['-q', ...launch.split(' ')], { maxBuffer: 16 * 1024 * 1024 });
  const stride = Math.ceil((width * 3) / 4) * 4;
  assert.equal(data.length, stride * height);
  return { camera: name, sequence: 1, receivedAt: Date.now(), pts: null, width, height, stride, data };
}

describe('the CenterNet detector on both runtimes', () => {
  const astronaut = frameOf('astronaut', 320, 320);
  const motorcycle = frameOf('motorcycle', 320, 216);
  const found: Record<string, Array<{ class: string; score: number }>> = {};

  for (const runtime of ['onnxruntime', 'tfjs-wasm'] as RuntimeName[]) {
    it(`finds the astronaut and the motorcycle with ${runtime}`, async () => {
      const detector = await CenterNetDetector.create({ inputSize: 320, runtime, threads: 1, threshold: 0.4, classes: null });
      try {
        assert.equal(detector.runtime, runtime);
        const a = await detector.analyze(astronaut);
        const m = await detector.analyze(motorcycle);
        assert.equal(a.detections[0]?.class, 'person');
        assert.ok(a.detections[0]!.score >= 0.5);
        assert.equal(m.detections[0]?.class, 'motorcycle');
        assert.ok(m.detections[0]!.score >= 0.6);
        found[runtime] = [...a.detections, ...m.detections].map((d) => ({ class: d.class, score: d.score }));
      } finally {
        await detector.close();
      }
    });
  }

  it('gives the same detections on both runtimes (the ONNX conversion is exact)', () => {
    assert.ok(found.onnxruntime && found['tfjs-wasm']);
    assert.equal(found.onnxruntime.length, found['tfjs-wasm'].length);
    found.onnxruntime.forEach((d, i) => {
      assert.equal(d.class, found['tfjs-wasm']![i]!.class);
      assert.ok(Math.abs(d.score - found['tfjs-wasm']![i]!.score) < 0.01);
    });
  });
});
