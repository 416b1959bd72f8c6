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
    it(`${dockerfile} installs from the same list, runs unprivileged and exposes 8554, 8000 and 8322 (RTSPS)`, () => {
      const text = read(dockerfile);
      assert.match(text, /COPY scripts\/debian-packages\.txt scripts\/debian-packages\.sh scripts\//);
      assert.match(text, /\$\(bash scripts\/debian-packages\.sh build\)/);
      assert.match(text, /\$\(bash scripts\/debian-packages\.sh runtime\)/);
      assert.match(text, /npm run gi-types/);
      assert.match(text, /^USER node$/m);
      assert.match(text, /^EXPOSE 8554 8000 8322$/m);
      assert.doesNotMatch(text, /apt-get install[^\n]*gstreamer/, 'no package named outside the list');
    });

    it(`${dockerfile} builds video analysis: onnxruntime's download skipped, the plugin and the model built after tsc, before the prune`, () => {
      const text = read(dockerfile);
      assert.match(text, /ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
      const tsc = text.indexOf('npx tsc -p tsconfig.json');
      const analysis = text.indexOf('bash scripts/build-analysis.sh');
      const prune = text.indexOf('npm prune --omit=dev');
      assert.ok(tsc > 0 && analysis > tsc && prune > analysis, 'tsc, then build-analysis.sh, then the prune');
      // The build stage copies the whole tree (plugins/ included); the final one takes dist/ (gst-plugins, models).
      assert.match(text, /^COPY \. \.$/m);
      assert.match(text, /^COPY --from=build \/app\/dist dist$/m);
      if (dockerfile.includes('arm32v7')) assert.match(text, /rm -rf node_modules\/onnxruntime-node/, 'no 32-bit ARM binaries: tfjs-wasm runs the detector');
    });
  }

  it('builds the inference plugin from the build packages (a C compiler and the GStreamer headers)', () => {
    const build = packages('build');
    const runtime = packages('runtime');
    for (const p of ['libgstreamer1.0-dev', 'pkg-config', 'build-essential']) assert.ok(build.includes(p) && !runtime.includes(p), p);
    assert.match(read('scripts/setup.sh'), /bash scripts\/build-analysis\.sh/);
  });

  it('has setup.sh read the same list and generate the same node-gtk types as the images', () => {
    const setup = read('scripts/setup.sh');
    assert.match(setup, /scripts\/debian-packages\.sh/);
    assert.match(setup, /npm run --silent gi-types/);
  });
});

describe('IoT Edge deployment files', () => {
  const moduleJson = JSON.parse(read('module.json')) as { image: { tag: { platforms: Record<string, string> } } };
  const deployment = JSON.parse(read('deployment.template.json')) as { modulesContent: Record<string, Record<string, any>> };
  const gst = deployment.modulesContent.$edgeAgent!['properties.desired'].modules['gst-iotedge'];

  it('builds one image per platform from the Dockerfiles', () => {
    assert.deepEqual(moduleJson.image.tag.platforms, { amd64: './Dockerfile.amd64', arm32v7: './Dockerfile.arm32v7' });
    for (const file of Object.values(moduleJson.image.tag.platforms)) assert.ok(read(file).length > 0);
  });

  it('binds the RTSP and HTTP ports and sets the environment the module reads', () => {
    const options = gst.settings.createOptions;
    for (const port of ['8554/tcp', '8000/tcp']) {
      assert.ok(port in options.ExposedPorts, port);
      assert.ok(port in options.HostConfig.PortBindings, port);
    }
    const main = read('main.ts') + read('actors/IotHubConnection.ts');
    for (const name of Object.keys(gst.env)) {
      if (['USER', 'PASSWORD', 'IP'].includes(name)) continue; // used by the example pipeline
      if (name === 'GST_DEBUG') continue; // read by GStreamer itself
      assert.ok(main.includes(name), `${name} is read by the module`);
    }
  });

  it('gives the module time to stop gracefully before Docker kills it', async () => {
    const { DEFAULT_RESTART_POLICY } = await import('../../config/defaults.js');
    const { STOP_MARGIN_MS } = await import('../../machines/pipeline.js');
    const { DEFAULT_ENGINE_POLICY } = await import('../../machines/engine.js');
    const { IOT_HUB_CLOSE_TIMEOUT_MS } = await import('../../actors/IotHubConnection.js');
    // Pipelines get EOS (bounded), then the engine exits (bounded), then the last report goes to the hub (bounded).
    const budgetMs = DEFAULT_RESTART_POLICY.stopTimeoutMs + 2 * STOP_MARGIN_MS + DEFAULT_ENGINE_POLICY.shutdownTimeoutMs + IOT_HUB_CLOSE_TIMEOUT_MS;
    const stopTimeoutS = gst.settings.createOptions.StopTimeout as number;
    assert.ok(stopTimeoutS * 1000 >= budgetMs + 5_000, `StopTimeout ${stopTimeoutS} s leaves room for the ${budgetMs} ms graceful stop`);
  });

  it('carries a desired-properties example from the seed that the module accepts', async () => {
    const { parseDesired } = await import('../../config/desired.js');
    const { resolveDesired } = await import('../../config/resolve.js');
    const desired = deployment.modulesContent['gst-iotedge']!['properties.desired'];
    const config = resolveDesired(parseDesired(desired), { USER: 'u', PASSWORD: 'p', IP: '127.0.0.1' });
    assert.equal(config.pipelines[0]?.name, 'main');
    assert.match(config.pipelines[0]!.launch, /rtsp:\/\/u:p@127\.0\.0\.1\/axis-media\/media\.amp/);
    assert.equal(config.unknownKeys.length, 0);
  });
});
