import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const root = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const packages = (use: string) => execFileSync('bash', [new URL('scripts/debian-packages.sh', root).pathname, use], { encoding: 'utf8' }).split('\n').filter(Boolean);

describe('one Debian package list for set-up and both images', () => {
  it('splits the list into runtime, build and test packages', () => {
    const runtime = packages('runtime');
    const build = packages('build');
    const all = packages('all');
    assert.ok(runtime.includes('gstreamer1.0-plugins-bad') && runtime.includes('gir1.2-gst-rtsp-server-1.0'));
    assert.ok(!runtime.includes('libcairo2-dev') && build.includes('libcairo2-dev'), 'build tools stay out of the image');
    assert.ok(!build.includes('ffmpeg') && all.includes('ffmpeg'), 'test tools only for the tests');
    for (const p of runtime) assert.ok(build.includes(p));
    for (const p of build) assert.ok(all.includes(p));
  });

  for (const dockerfile of ['Dockerfile.amd64', 'Dockerfile.arm32v7']) {
    it(`${dockerfile} installs from the same list, runs unprivileged and exposes 8554 and 8000`, () => {
      const text = read(dockerfile);
      assert.match(text, /COPY scripts\/debian-packages\.txt scripts\/debian-packages\.sh scripts\//);
      assert.match(text, /\$\(bash scripts\/debian-packages\.sh build\)/);
      assert.match(text, /\$\(bash scripts\/debian-packages\.sh runtime\)/);
      assert.match(text, /npm run gi-types/);
      assert.match(text, /^USER node$/m);
      assert.match(text, /^EXPOSE 8554 8000$/m);
      assert.doesNotMatch(text, /apt-get install[^\n]*gstreamer/, 'no package named outside the list');
    });
  }

  it('has setup.sh read the same list and generate the same node-gtk types as the images', () => {
    const setup = read('scripts/setup.sh');
    assert.match(setup, /scripts\/debian-packages\.sh/);
    assert.match(setup, /npm run --silent gi-types/);
  });
});
