import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { analyzersWithoutElement, checkAnalyzerModules, parseAnalysisSettings, tapSpecOf, workerSpecOf } from '../../config/analysis.js';
import { ConfigError } from '../../config/errors.js';

function rejects(desired: Record<string, unknown>, message: RegExp): void {
  assert.throws(() => parseAnalysisSettings(desired), (error: unknown) => error instanceof ConfigError && message.test(error.message));
}

describe('analysis settings', () => {
  it('reads the issue example with defaults for what it leaves out', () => {
    const settings = parseAnalysisSettings({ analyzers: { people: { model: 'coco', classes: ['person', 'car'], fps: 5, threshold: 0.5 } } });
    assert.equal(settings.decoder, 'auto');
    const [people] = settings.analyzers;
    assert.deepEqual(people?.source, { kind: 'element', element: 'people' });
    assert.equal(people?.model, 'coco');
    assert.deepEqual(people?.classes, ['person', 'car']);
    assert.equal(people?.inputSize, 320);
    assert.deepEqual(tapSpecOf(people!), { analyzer: 'people', source: { kind: 'element', element: 'people' }, fps: 5, inputSize: 320, keyFramesOnly: false });
    assert.equal(workerSpecOf(people!).camera, 'people');
  });

  it('takes a sample-hub stream or another element as the source', () => {
    const settings = parseAnalysisSettings({ analyzers: { lobby: { stream: 'video' }, door: { element: 'cam2', fps: 0.5 } }, decoder: 'software' });
    assert.deepEqual(settings.analyzers.map((a) => a.source), [{ kind: 'stream', stream: 'video' }, { kind: 'element', element: 'cam2' }]);
    assert.equal(settings.decoder, 'software');
  });

  it('has no analyzers without the key, and drops entries a patch set to null', () => {
    assert.deepEqual(parseAnalysisSettings({}).analyzers, []);
    assert.deepEqual(parseAnalysisSettings({ analyzers: { gone: null } }).analyzers, []);
  });

  it('rejects an unknown model, naming key and value', () => rejects({ analyzers: { people: { model: 'yolo' } } }, /^analyzers\.people\.model must be one of "coco", got "yolo"$/));
  it('rejects an unknown class, naming it', () => rejects({ analyzers: { people: { classes: ['person', 'unicorn'] } } }, /analyzers\.people\.classes: "unicorn" is not a COCO class/));
  it('rejects a negative fps', () => rejects({ analyzers: { people: { fps: -1 } } }, /analyzers\.people\.fps must be above 0 .*got -1/));
  it('rejects a threshold above 1', () => rejects({ analyzers: { people: { threshold: 1.5 } } }, /analyzers\.people\.threshold must be a number from 0 to 1, got 1\.5/));
  it('rejects an unknown decoder', () => rejects({ decoder: 'cuda' }, /^decoder must be one of "auto", "software", "nvcodec", "vaapi", "v4l2", got "cuda"$/));
  it('rejects a misspelt analyzer setting', () => rejects({ analyzers: { people: { treshold: 0.5 } } }, /analyzers\.people\.treshold is not an analyzer setting/));
  it('rejects a relative module path', () => rejects({ analyzers: { mine: { module: 'plugins/mine.js' } } }, /analyzers\.mine\.module must be the absolute path .*"plugins\/mine\.js"/));
  it('rejects model and module together', () => rejects({ analyzers: { mine: { model: 'coco', module: '/x.js' } } }, /"model" and "module" exclude each other/));
  it('rejects an input size the model does not take', () => rejects({ analyzers: { people: { input_size: 300 } } }, /input_size must be one of 320, 416, 512, got 300/));
  it('rejects more analyzers than it runs processes for', () =>
    rejects({ analyzers: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`cam${i}`, { stream: `s${i}` }])) }, /^analyzers: at most 16 \(each runs a process\), got 17$/));
  it('rejects two analyzers on one source', () => rejects({ analyzers: { a: { stream: 'video' }, b: { stream: 'video' } } }, /analyzers\.b: stream video is analysed by a already/));

  it('lists analyzers whose inference element no pipeline has', () => {
    const settings = parseAnalysisSettings({ analyzers: { people: {}, cars: {} } });
    assert.deepEqual(analyzersWithoutElement(settings, ['rtspsrc location=rtsp://x ! rtph264depay ! inference name=people ! h264parse ! fakesink']), ['cars']);
  });
});

describe('analyzer plugin modules', () => {
  const dir = mkdtempSync(join(tmpdir(), 'analyzer-plugins-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a module whose default export is a factory', async () => {
    const good = join(dir, 'good.mjs');
    writeFileSync(good, 'export default () => ({ analyze: async () => ({ detections: [] }) });\n');
    await checkAnalyzerModules(parseAnalysisSettings({ analyzers: { mine: { module: good } } }));
  });

  it('rejects a path that does not load, naming key, path and reason', async () => {
    const missing = join(dir, 'missing.mjs');
    await assert.rejects(checkAnalyzerModules(parseAnalysisSettings({ analyzers: { mine: { module: missing } } })), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, new RegExp(`^analyzers\\.mine\\.module "${missing}" does not load: .*(Cannot find|ERR_MODULE_NOT_FOUND)`));
      return true;
    });
  });

  it('rejects a module without a default factory', async () => {
    const bad = join(dir, 'bad.mjs');
    writeFileSync(bad, 'export const analyze = 1;\n');
    await assert.rejects(checkAnalyzerModules(parseAnalysisSettings({ analyzers: { mine: { module: bad } } })), /has no default export function/);
  });
});
