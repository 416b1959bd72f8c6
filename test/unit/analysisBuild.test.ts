import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readCenterNet } from '../../analysis/centernet/graph.js';
import { writeCenterNetOnnx } from '../../analysis/centernet/toOnnx.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

describe('analysis build steps', () => {
  it('compiles the plugin only with the build packages, and set-up runs the step with onnxruntime\'s download skipped', () => {
    const build = execFileSync('bash', [join(root, 'scripts/debian-packages.sh'), 'build'], { encoding: 'utf8' }).split('\n');
    const runtime = execFileSync('bash', [join(root, 'scripts/debian-packages.sh'), 'runtime'], { encoding: 'utf8' }).split('\n');
    assert.ok(build.includes('libgstreamer1.0-dev') && !runtime.includes('libgstreamer1.0-dev'));
    const setup = read('scripts/setup.sh');
    assert.match(setup, /ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
    assert.match(setup, /bash scripts\/build-analysis\.sh/);
  });

  it('skips the plugin build and the model conversion when nothing changed', () => {
    const first = spawnSync('bash', ['scripts/build-analysis.sh'], { cwd: root, encoding: 'utf8' });
    assert.equal(first.status, 0, first.stderr);
    const again = spawnSync('bash', ['scripts/build-analysis.sh'], { cwd: root, encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stderr, '', 'nothing rebuilt');
  });

  it('converts the model to the same ONNX bytes every time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-'));
    try {
      const files = readCenterNet();
      const hash = (path: string) => createHash('sha1').update(readFileSync(path)).digest('hex');
      writeCenterNetOnnx(join(dir, 'a.onnx'), files);
      writeCenterNetOnnx(join(dir, 'b.onnx'), files);
      assert.equal(hash(join(dir, 'a.onnx')), hash(join(dir, 'b.onnx')));
      assert.equal(writeCenterNetOnnx(join(dir, 'a.onnx'), files).written, false, 'skipped when made from the same inputs');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
