import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { filter, firstValueFrom } from 'rxjs';
import { ControlPlane, type ControlPlaneEvent, type StatusDocument } from '../../actors/ControlPlane.js';
import type { EngineCommand, RecorderSpec } from '../../ipc/protocol.js';
import { openSegment } from '../../recording/localFile.js';
import { segmentFileName } from '../../recording/naming.js';
import type { UploadJob, UploadResult, UploadTarget } from '../../recording/target.js';
import { FakeEngine } from '../support/FakeEngine.js';

const PIPELINE = 'videotestsrc is-live=true ! x264enc ! h264parse ! appsink name=video';
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A target that takes every upload (after checking the file is there as queued), and records the jobs. */
function fakeTarget(name: string): UploadTarget & { jobs: UploadJob[] } {
  const jobs: UploadJob[] = [];
  return {
    name,
    type: 'azure-blob',
    jobs,
    async upload(job: UploadJob): Promise<UploadResult> {
      jobs.push(job);
      await (await openSegment(job.path, job.size)).close();
      return { md5: 'bWQ1', url: `http://blob.example/recordings/${job.objectName}?sig=SECRET`, bytesSent: job.size, bytesSkipped: 0, unitsSkipped: 0, units: 1 };
    },
    close: () => undefined,
  };
}

function setup(env: NodeJS.ProcessEnv = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'plane-recording-'));
  dirs.push(stateDir);
  const engine = new FakeEngine();
  const targets: Array<ReturnType<typeof fakeTarget>> = [];
  const plane = new ControlPlane({
    logger: pino({ level: 'silent' }),
    engine,
    env: { AZ_CONN: 'UseDevelopmentStorage=true', IOTEDGE_DEVICEID: 'edge-1', ...env },
    recordingStateDir: stateDir,
    createRecordingTarget: async (settings) => {
      const target = fakeTarget(settings.name);
      targets.push(target);
      return target;
    },
  });
  plane.start();
  const status = (predicate: (s: StatusDocument) => boolean) => firstValueFrom(plane.status$.pipe(filter(predicate)));
  const outcome = (sequence: number) =>
    firstValueFrom(plane.events$.pipe(filter((e): e is Extract<ControlPlaneEvent, { type: 'config' }> => e.type === 'config' && e.sequence === sequence)));
  const configures = () => engine.commands.filter((c): c is Extract<EngineCommand, { type: 'record-configure' }> => c.type === 'record-configure');
  return { engine, plane, status, outcome, configures, stateDir, targets };
}

const RECORD = { segment_seconds: 2, fragment_ms: 500, targets: [{ type: 'azure-blob', name: 'blob', container: 'recordings', connection_string: '$AZ_CONN' }] };

describe('the control plane records (fake engine, fake target)', () => {
  it('sends the recorders on apply and again to every new engine, as the rtsp and analysis commands', async () => {
    const { engine, plane, outcome, configures, stateDir } = setup();
    assert.equal((await outcome(plane.applyDesired({ pipeline: PIPELINE, record: RECORD }))).status, 'applied');
    const expected: RecorderSpec = { name: 'video', stream: 'video', audio: 'audio', dir: join(stateDir, 'recordings'), segmentMs: 2_000, fragmentMs: 500 };
    assert.deepEqual(configures().map((c) => c.recorders), [[expected]]);
    // The state folder is made private when recording first needs it.
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    engine.die();
    engine.up();
    assert.deepEqual(configures().map((c) => c.recorders), [[expected], [expected]]);
    await plane.close();
  });

  it('queues a segment the engine finished, uploads it, and says so in the status and on events$ (URL without its query)', async () => {
    const { engine, plane, outcome, status, stateDir, targets } = setup();
    await outcome(plane.applyDesired({ pipeline: PIPELINE, record: RECORD }));
    const uploaded = firstValueFrom(plane.events$.pipe(filter((e): e is Extract<ControlPlaneEvent, { type: 'recording-uploaded' }> => e.type === 'recording-uploaded')));
    const dir = join(stateDir, 'recordings');
    mkdirSync(dir, { recursive: true });
    const startMs = Date.UTC(2024, 4, 1, 12);
    const path = join(dir, segmentFileName('video', startMs));
    writeFileSync(path, Buffer.alloc(1234, 7));
    engine.events$.next({ type: 'record-segment', segment: { recorder: 'video', stream: 'video', path, startMs, durationMs: 2_000, size: 1234, audio: false } });
    const event = await uploaded;
    assert.equal(event.camera, 'edge-1');
    assert.equal(event.stream, 'video');
    assert.equal(event.target, 'blob');
    assert.equal(event.start, new Date(startMs).toISOString());
    assert.equal(event.durationMs, 2_000);
    assert.equal(event.size, 1234);
    assert.equal(event.url.split('?')[0], 'http://blob.example/recordings/edge-1/video/2024/05/01/20240501T120000.000Z.mp4');
    assert.ok(!event.url.includes('SECRET'), event.url);
    assert.equal(targets[targets.length - 1]!.jobs.length, 1);
    const doc = await status((s) => s.recording?.uploaded === 1);
    assert.equal(doc.recording!.written, 1);
    assert.equal(doc.recording!.queued, 0);
    assert.equal(doc.recording!.bytesPending, 0);
    assert.equal(doc.recording!.alarm, null);
    assert.deepEqual(Object.keys(doc.recording!.targets), ['blob']);
    assert.deepEqual(plane.recordings.entries()!.map((e) => [e.stream, e.state, e.size]), [['video', 'uploaded', 1234]]);
    await plane.close();
  });

  it('rejects bad record settings with the reason, and the last good recording keeps running', async () => {
    const { plane, outcome, status, configures } = setup();
    await outcome(plane.applyDesired({ pipeline: PIPELINE, record: RECORD }));
    await status((s) => s.recording !== null);
    const bad = [
      [{ ...RECORD, targets: [{ type: 'ftp', container: 'recordings' }] }, 'record.targets[0].type must be "azure-blob" or "s3", got "ftp"'],
      [{ ...RECORD, targets: [{ type: 'azure-blob', connection_string: '$AZ_CONN' }] }, 'record.targets[0].container is required'],
      [{ ...RECORD, targets: [{ ...RECORD.targets[0], connection_string: '$NO_SUCH_CONN' }] }, 'record.targets[0].connection_string: environment variable NO_SUCH_CONN is not set'],
      [{ ...RECORD, object_name: '{camera}/{cam}/{start}.mp4' }, 'record.object_name: unknown field {cam}'],
    ] as const;
    for (const [record, reason] of bad) {
      const result = await outcome(plane.applyDesired({ pipeline: PIPELINE, record }));
      assert.equal(result.status, 'rejected', JSON.stringify(record));
      assert.ok(result.error?.includes(reason), `"${result.error}" names "${reason}"`);
    }
    assert.equal(configures().length, 1, 'the engine was not told anything new');
    const doc = plane.status$.value;
    assert.equal(doc.config.status, 'rejected');
    assert.ok(doc.recording !== null, 'recording still runs');
    assert.deepEqual(Object.keys(doc.recording.targets), ['blob']);
    await plane.close();
  });

  it('turns recording off: the recorders stop first (their last segments are queued), then the queue closes', async () => {
    const { plane, outcome, status, configures } = setup();
    await outcome(plane.applyDesired({ pipeline: PIPELINE, record: RECORD }));
    await status((s) => s.recording?.recorders.video?.state === 'waiting');
    assert.equal((await outcome(plane.applyDesired({ pipeline: PIPELINE }))).status, 'applied');
    assert.deepEqual(configures().map((c) => c.recorders.length), [1, 0, 0]);
    assert.equal(plane.status$.value.recording, null);
    assert.equal(plane.recordings.entries(), null);
    await plane.close();
  });

  it('stops the recorders while the engine is up when the module stops, and the engine going down stops them in the status', async () => {
    const { engine, plane, outcome, status, configures } = setup();
    await outcome(plane.applyDesired({ pipeline: PIPELINE, record: RECORD }));
    await status((s) => s.recording?.recorders.video?.state === 'waiting');
    engine.die();
    await status((s) => s.recording?.recorders.video?.state === 'stopped');
    engine.up();
    await status((s) => s.recording?.recorders.video?.state === 'waiting');
    await plane.close();
    assert.deepEqual(configures().at(-1)?.recorders, [], 'the last command stopped the recorders');
  });

  it('reports each unknown record setting once, also inside a target, and refuses a media folder holding the state folder', async () => {
    const { plane, outcome, stateDir } = setup();
    const record = { ...RECORD, colour: 'red', local: { keep: true }, targets: [{ ...RECORD.targets[0], region: 'x' }] };
    assert.equal((await outcome(plane.applyDesired({ pipeline: PIPELINE, record }))).status, 'applied');
    const warnings = plane.status$.value.config.warnings;
    assert.deepEqual(warnings.filter((w) => w.includes('colour')), ['unknown key "record.colour" ignored']);
    assert.deepEqual(warnings.filter((w) => w.includes('keep')), ['unknown key "record.local.keep" ignored']);
    assert.deepEqual(warnings.filter((w) => w.includes('region')), ['record.targets[0].region is not a known setting (ignored)']);
    const served = await outcome(plane.applyDesired({ pipeline: PIPELINE, record: RECORD, http: { media_root: join(stateDir, '..') } }));
    assert.equal(served.status, 'rejected');
    assert.match(served.error ?? '', /http\.media_root must not be or hold the module's state folder/);
    await plane.close();
  });

  it('warns about a recorded stream no pipeline publishes', async () => {
    const { plane, outcome } = setup();
    await outcome(plane.applyDesired({ pipeline: 'videotestsrc ! fakesink', record: RECORD }));
    assert.ok(plane.status$.value.config.warnings.some((w) => w.includes('appsink name=video')), plane.status$.value.config.warnings.join('; '));
    await plane.close();
  });
});
