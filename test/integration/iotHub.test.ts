import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IotHubEmulator, type RecordedEvent } from '../support/iotHubEmulator.js';
import { ModuleProcess, type ReportedDocument } from '../support/ModuleProcess.js';
import { WorkloadApiEmulator } from '../support/workloadApi.js';

const DEVICE = 'edge-device-1';
const MODULE = 'gst';
const LIVE = 'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! fakesink';
const live = (pattern: string) => LIVE.replace('videotestsrc', `videotestsrc pattern=${pattern}`);

const modules: ModuleProcess[] = [];
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gst-iotedge-state-'));
  dirs.push(dir);
  return dir;
}

function startModule(env: NodeJS.ProcessEnv): ModuleProcess {
  const module = new ModuleProcess({ desired: {}, twinFile: false, env: { REPORT_INTERVAL_MS: '100', ...env } });
  modules.push(module);
  return module;
}

let hub: IotHubEmulator;
before(async () => {
  hub = await IotHubEmulator.create();
});
after(async () => {
  await Promise.all(modules.map((m) => m.stop()));
  await hub.close();
  for (const dir of [...dirs, ...modules.map((m) => m.dir)]) rmSync(dir, { recursive: true, force: true });
});

describe('the module twin drives the module (connection string + CA)', () => {
  let module: ModuleProcess;
  let stateDir: string;
  /** The desired `$version` the module starts with, and the reported `$version` before it reported anything. */
  let initialVersion: number;
  let initialReported: number;
  /** The hub's reported `$version` now: take it before a change, so that only documents sent after it count. */
  const reportedVersion = () => hub.reportedVersion(DEVICE, MODULE);
  const reported = (predicate: (r: ReportedDocument) => boolean, after: number, timeoutMs = 20_000) =>
    hub.waitForReported<ReportedDocument>(DEVICE, MODULE, predicate, { after, timeoutMs });

  before(() => {
    hub.addModule(DEVICE, MODULE);
    initialVersion = hub.setDesired(DEVICE, MODULE, { pipeline: LIVE });
    initialReported = reportedVersion();
    stateDir = tempDir();
    module = startModule({
      EdgeHubConnectionString: hub.connectionString(DEVICE, MODULE),
      EdgeModuleCACertificateFile: hub.caCertPath,
      STATE_DIR: stateDir,
    });
  });

  it('applies the initial twin and reports the pipeline PLAYING', async () => {
    await module.waitForLog((l) => l.event === 'iothub-connected');
    await module.waitForPipeline('main', 'playing');
    const r = await reported((r) => r.config.appliedVersion === initialVersion && r.pipelines.main?.state === 'playing', initialReported);
    assert.equal(r.config.status, 'applied');
    assert.equal(r.pipelines.main.pipeline, LIVE);
    assert.equal(r.pipelines.main.restarts, 0);
    assert.equal(r.engine.state, 'running');
  });

  it('swaps the pipeline on a desired patch and reports the applied $version', async () => {
    const from = module.logs.length;
    const after = reportedVersion();
    const version = hub.patchDesired(DEVICE, MODULE, { pipeline: live('ball') });
    const playing = await module.waitForPipeline('main', 'playing', 20_000, from);
    assert.equal(playing.template, live('ball'));
    // The new version and the new pipeline PLAYING in one document: not the applied one still "starting".
    const r = await reported((r) => r.config.appliedVersion === version && r.pipelines.main?.state === 'playing', after);
    assert.equal(r.pipelines.main.pipeline, live('ball'));
  });

  it('applies the merged desired document: a null in a patch deletes the key', async () => {
    const from = module.logs.length;
    const beforeAdd = reportedVersion();
    const added = hub.patchDesired(DEVICE, MODULE, { pipelines: { cam2: 'videotestsrc is-live=true ! fakesink' } });
    await module.waitForPipeline('cam2', 'playing', 20_000, from);
    const withCam2 = await reported((r) => r.config.appliedVersion === added && r.pipelines.cam2?.state === 'playing', beforeAdd);
    assert.equal(withCam2.pipelines.main?.state, 'playing');
    const mainTouched = () => module.logs.slice(from).some((l) => l.pipeline === 'main' && l.event === 'pipeline-state');
    assert.equal(mainTouched(), false, 'a patch that adds cam2 leaves main alone');
    const removing = module.logs.length;
    const beforeRemove = reportedVersion();
    const removed = hub.patchDesired(DEVICE, MODULE, { pipelines: null });
    await module.waitForPipeline('cam2', 'stopped', 20_000, removing);
    // Tied to the removal: a document from before cam2 was added has no cam2 either.
    const r = await reported((r) => r.config.appliedVersion === removed && r.pipelines.cam2 === undefined, beforeRemove);
    assert.equal(r.pipelines.main?.state, 'playing');
    assert.equal(mainTouched(), false);
  });

  it('rejects an invalid pipeline in a patch with the reason reported, and keeps the old one', async () => {
    const from = module.logs.length;
    const after = reportedVersion();
    const version = hub.patchDesired(DEVICE, MODULE, { pipeline: 'videotestsrc ! nosuchelement ! fakesink' });
    const r = await reported((r) => r.config.rejectedVersion === version, after);
    assert.equal(r.config.status, 'rejected');
    assert.ok(r.config.error !== null, 'the reason is reported');
    assert.match(r.config.error, /main: no element "nosuchelement"/);
    assert.equal(r.pipelines.main?.state, 'playing');
    assert.equal(module.logs.slice(from).filter((l) => l.event === 'pipeline-state').length, 0);
  });

  it('reports a failing pipeline going through backoff with its restarts and last error', async () => {
    const failingAfter = reportedVersion();
    const failing = hub.patchDesired(DEVICE, MODULE, {
      pipeline: 'filesrc location=/nonexistent/cam.h264 ! fakesink',
      restart_policy: { initial_delay_ms: 200, max_delay_ms: 400 },
    });
    const r = await reported((r) => r.config.appliedVersion === failing && r.pipelines.main?.restarts >= 2, failingAfter);
    const { lastError, state } = r.pipelines.main;
    assert.ok(lastError !== null, 'the last error is reported');
    assert.match(lastError, /not found|No such file|Could not open/i);
    assert.ok(['backoff', 'starting'].includes(state), state);
    const fixedAfter = reportedVersion();
    const fixed = hub.patchDesired(DEVICE, MODULE, { pipeline: LIVE, restart_policy: null });
    const back = await reported((r) => r.config.appliedVersion === fixed && r.pipelines.main?.state === 'playing', fixedAfter);
    assert.equal(back.pipelines.main.restarts, 0);
  });

  it('sends pipeline state changes as output events on "events"', async () => {
    const event = await hub.waitForEvent((e: RecordedEvent) => {
      const body = JSON.parse(e.body.toString()) as { type?: string; state?: string };
      return e.outputName === 'events' && body.type === 'pipeline-state' && body.state === 'playing';
    }, 20_000);
    const body = JSON.parse(event.body.toString()) as Record<string, unknown>;
    assert.equal(body.pipeline, 'main');
    assert.equal(event.properties.type, 'pipeline-state');
  });

  it('answers getStatus with the status document', async () => {
    const { status, payload } = await hub.invokeMethod(DEVICE, MODULE, 'getStatus', {}, 15_000);
    assert.equal(status, 200);
    const doc = payload as Record<string, any>;
    assert.equal(doc.pipelines.main.state, 'playing');
    assert.equal(doc.config.status, 'applied');
  });

  it('restarts a pipeline on restartPipeline, and refuses bad payloads and unknown names', async () => {
    const from = module.logs.length;
    const ok = await hub.invokeMethod(DEVICE, MODULE, 'restartPipeline', { name: 'main' }, 15_000);
    assert.deepEqual(ok, { status: 200, payload: { restarted: 'main' } });
    await module.waitForLog((l) => l.event === 'pipeline-state' && l.pipeline === 'main' && l.state === 'playing' && l.restarts === 1, 20_000, from);
    const bad = await hub.invokeMethod(DEVICE, MODULE, 'restartPipeline', { nom: 'main' }, 15_000);
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.payload), /payload must be/);
    const missing = await hub.invokeMethod(DEVICE, MODULE, 'restartPipeline', { name: 'nope' }, 15_000);
    assert.equal(missing.status, 404);
    assert.match(JSON.stringify(missing.payload), /no pipeline \\"nope\\"/);
  });

  it('applies a document from setDesired and answers 400 with the reason for an invalid one', async () => {
    const from = module.logs.length;
    const applied = await hub.invokeMethod(DEVICE, MODULE, 'setDesired', { pipeline: live('snow') }, 20_000);
    assert.deepEqual(applied, { status: 200, payload: { status: 'applied' } });
    await module.waitForLog((l) => l.event === 'pipeline-state' && l.pipeline === 'main' && l.state === 'playing' && l.template === live('snow'), 20_000, from);
    const rejected = await hub.invokeMethod(DEVICE, MODULE, 'setDesired', { pipeline: 'videotestsrc ! ! fakesink' }, 20_000);
    assert.equal(rejected.status, 400);
    assert.match(JSON.stringify(rejected.payload), /syntax error/);
    const notObject = await hub.invokeMethod(DEVICE, MODULE, 'setDesired', 'pipeline', 20_000);
    assert.equal(notObject.status, 400);
  });

  it('answers an unknown method with 404', async () => {
    const result = await hub.invokeMethod(DEVICE, MODULE, 'reboot', {}, 15_000);
    assert.equal(result.status, 404);
    assert.match(JSON.stringify(result.payload), /unknown method/);
  });

  it('keeps running while the hub is down and converges to a desired change made meanwhile', async () => {
    const clientId = IotHubEmulator.clientId(DEVICE, MODULE);
    const gone = hub.waitForDisconnection(clientId, 20_000);
    await hub.stop();
    await gone;
    const after = reportedVersion();
    const version = hub.patchDesired(DEVICE, MODULE, { pipeline: live('pinwheel') });
    const from = module.logs.length;
    await hub.start();
    await hub.waitForConnection(clientId, 30_000);
    await module.waitForLog((l) => l.event === 'pipeline-state' && l.pipeline === 'main' && l.state === 'playing' && l.template === live('pinwheel'), 40_000, from);
    await reported((r) => r.config.appliedVersion === version && r.pipelines.main?.state === 'playing', after);
    assert.equal(module.child.exitCode, null);
  });

  it('refuses a wrong key, says why in the log, and runs the last applied config', async () => {
    await module.stop();
    const wrong = hub.connectionString(DEVICE, MODULE).replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.from('not-the-key').toString('base64')}`);
    const again = startModule({ EdgeHubConnectionString: wrong, EdgeModuleCACertificateFile: hub.caCertPath, STATE_DIR: stateDir });
    const failed = await again.waitForLog((l) => l.event === 'iothub-connect-failed');
    assert.match(failed.msg, /IoT Hub refused the credentials/);
    const playing = await again.waitForPipeline('main', 'playing');
    assert.equal(playing.template, live('pinwheel'), 'the cached desired document runs');
    assert.ok(!again.output.some((line) => line.includes(Buffer.from('not-the-key').toString('base64'))), 'the key is never logged');
  });
});

describe('IoT Edge environment (workload API)', () => {
  it('connects with ModuleClient.fromEnvironment through the workload API and applies the twin', async () => {
    const moduleId = 'gst-edge';
    const key = hub.addModule(DEVICE, moduleId);
    const version = hub.setDesired(DEVICE, moduleId, { pipeline: live('smpte') });
    const after = hub.reportedVersion(DEVICE, moduleId);
    const workload = await WorkloadApiEmulator.create(hub.caCert);
    try {
      workload.addModule(moduleId, key);
      const env = workload.edgeEnvironment({ deviceId: DEVICE, moduleId, iothubHostName: hub.hubHostName, gatewayHostName: hub.gatewayHostName });
      const module = startModule({ ...env, STATE_DIR: tempDir() });
      const playing = await module.waitForPipeline('main', 'playing');
      assert.equal(playing.template, live('smpte'));
      await hub.waitForReported<ReportedDocument>(DEVICE, moduleId, (r) => r.config.appliedVersion === version && r.pipelines.main?.state === 'playing', { after, timeoutMs: 20_000 });
      assert.ok(workload.requests.some((r) => r.path.includes('/sign')), 'signed through the workload API');
      await module.stop();
    } finally {
      await workload.close();
    }
  });
});
