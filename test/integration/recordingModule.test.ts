import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { readMp4Layout } from '../../recording/mp4.js';
import type { RecordingsAnswer } from '../../recording/recordingsQuery.js';
import type { SegmentUploadedEvent } from '../../recording/events.js';
import { launchChromium } from '../support/browser.js';
import { IotHubEmulator, type RecordedEvent } from '../support/iotHubEmulator.js';
import { MAIN, ModuleProcess, type LogLine, type ReportedDocument } from '../support/ModuleProcess.js';
import { azureObjects, azureTarget, createContainer, s3Objects, s3Target, storageEnv } from '../support/recordingFixtures.js';
import { AzuriteServer, S3rverServer } from '../support/storageServers.js';

const run = promisify(execFile);
const DEVICE = 'edge-recording';
const MODULE = 'gst';
/** A camera-like H.264 stream on the hub's `video` (1 s GOP, small: the machine is shared). */
const PIPELINE =
  'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! ' +
  'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=300 ! video/x-h264,profile=constrained-baseline ! ' +
  'h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false';
const LOOPBACK = { metrics: { port: null }, rtsp: { port: 0, address: '127.0.0.1' } };
/** Short segments (a few seconds), uploaded files kept so their bytes can be compared with what arrived. */
const RECORD = { camera: 'door', segment_seconds: 2, fragment_ms: 500, local: { keep_uploaded: true }, upload: { initial_delay_ms: 200, max_delay_ms: 2_000 } };

const dirs: string[] = [];
const modules: ModuleProcess[] = [];
after(async () => {
  await Promise.all(modules.map((m) => m.stop()));
  for (const dir of [...dirs, ...modules.map((m) => m.dir)]) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

const md5Hex = (path: string) => createHash('md5').update(readFileSync(path)).digest('hex');

/** ffprobe's view of a file: duration, codecs, video packets, and what it complained about. */
function probe(path: string): { durationS: number; codecs: string[]; packets: number; errors: string } {
  const ffprobe = (args: string[]) => {
    try {
      return { out: execFileSync('ffprobe', ['-v', 'error', ...args, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), err: '' };
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string };
      return { out: e.stdout ?? '', err: e.stderr ?? String(error) };
    }
  };
  const info = ffprobe(['-show_entries', 'format=duration:stream=codec_name', '-of', 'json']);
  const parsed = JSON.parse(info.out || '{}') as { format?: { duration?: string }; streams?: Array<{ codec_name: string }> };
  const packets = ffprobe(['-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0']);
  return { durationS: Number(parsed.format?.duration ?? NaN), codecs: (parsed.streams ?? []).map((s) => s.codec_name), packets: Number(packets.out.trim()), errors: (info.err + packets.err).trim() };
}

function assertPlays(path: string): void {
  const p = probe(path);
  assert.deepEqual(p.codecs, ['h264'], `${path}: ${JSON.stringify(p)}`);
  assert.ok(p.durationS > 0.2 && p.packets > 3, `${path}: ${JSON.stringify(p)}`);
  assert.equal(p.errors, '', `${path}: ffprobe complained`);
}

async function webBase(module: ModuleProcess, from = 0): Promise<string> {
  const http = await module.waitForLog((l) => l.event === 'http-listening', 60_000, from);
  return `http://127.0.0.1:${http.port as number}`;
}

/** A sample's value in Prometheus text (first series whose labels include `labels`), or null. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

/**
 * Resolves with the name of the segment file the recorder is writing (the newest `.part`) once it holds `fragments`
 * complete fragments (one more at most): checked on every change in the folder (each fragment is a write).
 */
function partWithFragments(dir: string, fragments: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let checking = false;
    let again = false;
    const check = async () => {
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      try {
        // The newest: with async-finalize, the previous segment is still a `.part` while splitmuxsink closes it.
        const name = readdirSync(dir).filter((n) => n.endsWith('.part')).sort().at(-1);
        const layout = name === undefined ? null : await readMp4Layout(join(dir, name)).catch(() => null);
        // Young enough that the kill lands before splitmuxsink moves on to the next file.
        if (name !== undefined && layout?.playable && layout.fragments >= fragments && layout.fragments <= fragments + 1) return finish(name);
      } finally {
        checking = false;
      }
      if (again) {
        again = false;
        void check();
      }
    };
    const watcher = watch(dir, () => void check());
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`no .part with ${fragments} fragments in ${dir} within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (name: string) => {
      clearTimeout(timer);
      watcher.close();
      resolve(name);
    };
    void check();
  });
}

const bodyOf = (e: RecordedEvent) => JSON.parse(e.body.toString()) as SegmentUploadedEvent;
const queuedBy = (source: string) => (l: LogLine) => l.event === 'recording-queued' && l.source === source;

describe('recording through the module: the main pipeline\'s video into Azure Blob (azurite) and S3 (s3rver), announced on IoT Hub', () => {
  let hub: IotHubEmulator;
  let azurite: AzuriteServer;
  let s3: S3rverServer;
  let stateDir: string;
  let env: NodeJS.ProcessEnv;
  let module: ModuleProcess;
  let base: string;
  const recordingsDir = () => join(stateDir, 'recordings');
  /** Upload messages on the module output `recordings`, for one target. */
  const uploadedTo = (target: string, predicate: (b: SegmentUploadedEvent) => boolean = () => true, timeoutMs = 90_000) =>
    hub.waitForEvent((e) => e.outputName === 'recordings' && bodyOf(e).target === target && predicate(bodyOf(e)), timeoutMs).then(bodyOf);

  function startModule(): ModuleProcess {
    const m = new ModuleProcess({ desired: {}, twinFile: false, env });
    modules.push(m);
    return m;
  }

  before(async () => {
    [hub, azurite, s3] = await Promise.all([IotHubEmulator.create(), AzuriteServer.create(), S3rverServer.create()]);
    await createContainer(azurite);
    stateDir = tempDir('gst-iotedge-state-');
    hub.addModule(DEVICE, MODULE);
    hub.setDesired(DEVICE, MODULE, {
      ...LOOPBACK,
      http: { port: 0, address: '127.0.0.1', media_root: tempDir('gst-iotedge-media-') },
      pipeline: PIPELINE,
      record: { ...RECORD, targets: [azureTarget, s3Target] },
    });
    env = {
      REPORT_INTERVAL_MS: '100',
      EdgeHubConnectionString: hub.connectionString(DEVICE, MODULE),
      EdgeModuleCACertificateFile: hub.caCertPath,
      STATE_DIR: stateDir,
      ...storageEnv(azurite, s3),
    };
    module = startModule();
    base = await webBase(module);
  });
  after(async () => {
    await Promise.all(modules.map((m) => m.stop()));
    await Promise.all([hub?.close(), azurite?.dispose(), s3?.dispose()]);
  });

  it('uploads segments byte-identical to the local files into the container and the bucket', async () => {
    // Two segments on both targets, then every object is compared with its local file.
    const twoOnEach = async (target: string) => {
      const seen = new Set<string>();
      await hub.waitForEvent((e) => {
        if (e.outputName === 'recordings' && bodyOf(e).target === target) seen.add(bodyOf(e).objectName);
        return seen.size >= 2;
      }, 90_000);
    };
    await Promise.all([twoOnEach('azure'), twoOnEach('s3')]);
    const listed = (await (await fetch(`${base}/api/recordings`)).json()) as RecordingsAnswer;
    const [blobs, objects] = await Promise.all([azureObjects(azurite), s3Objects(s3)]);
    const uploaded = listed.segments.filter((s) => s.uploads.length === 2);
    assert.ok(uploaded.length >= 2, JSON.stringify(listed).slice(0, 1_000));
    for (const segment of uploaded) {
      assert.ok(segment.file, `${segment.id} is kept locally`);
      const local = md5Hex(join(recordingsDir(), segment.file));
      const name = new URL(segment.uploads.find((u) => u.target === 'azure')!.url).pathname.split('/').slice(3).map(decodeURIComponent).join('/');
      assert.equal(blobs.get(name), local, `blob ${name}`);
      assert.equal(objects.get(name), local, `s3 object ${name}`);
      assertPlays(join(recordingsDir(), segment.file));
    }
  });

  it('announces each upload on the output "recordings": URL, start, duration, size and MD5 of the file', async () => {
    const event = await hub.waitForEvent((e) => e.outputName === 'recordings' && bodyOf(e).target === 'azure', 60_000);
    const body = bodyOf(event);
    assert.equal(body.type, 'recording-uploaded');
    assert.equal(body.camera, 'door');
    assert.equal(body.stream, 'video');
    assert.equal(body.targetType, 'azure-blob');
    assert.match(body.objectName, /^door\/video\/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{6}\.\d{3}Z\.mp4$/);
    assert.equal(body.url, `http://127.0.0.1:${azurite.port}/devstoreaccount1/recordings/${body.objectName}`);
    assert.ok(Math.abs(Date.parse(body.start) - Date.now()) < 600_000, body.start);
    // Up to one GOP shorter than the segment length, never longer than it plus a frame or so.
    assert.ok(body.durationMs >= 900 && body.durationMs <= 2_200, `duration ${body.durationMs} ms`);
    const file = listedFile(await list(), body.start);
    const path = join(recordingsDir(), file);
    assert.equal(body.size, readFileSync(path).length);
    assert.equal(body.md5, createHash('md5').update(readFileSync(path)).digest('base64'));
    assert.equal(event.properties.type, 'recording-uploaded');
    assert.equal(event.properties.stream, 'video');
    assert.match(event.properties['$.ct'] ?? '', /application\/json/);
  });

  async function list(query = ''): Promise<RecordingsAnswer> {
    const response = await fetch(`${base}/api/recordings${query}`);
    assert.equal(response.status, 200);
    return (await response.json()) as RecordingsAnswer;
  }
  function listedFile(answer: RecordingsAnswer, start: string): string {
    const segment = answer.segments.find((s) => s.start === start);
    assert.ok(segment?.file, `a local file for the segment of ${start}`);
    return segment.file;
  }

  it('lists the segments on /api/recordings, serves a local one for the status page, and refuses bad queries and ids', async () => {
    const answer = await list(`?from=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}&stream=video`);
    assert.ok(answer.count >= 2 && answer.segments.every((s) => s.stream === 'video'));
    const segment = answer.segments.find((s) => s.state === 'uploaded' && s.file)!;
    assert.deepEqual(segment.uploads.map((u) => u.target).sort(), ['azure', 's3']);
    assert.equal((await list('?stream=audio')).count, 0);

    const bad = await fetch(`${base}/api/recordings?from=yesterday`);
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /^from must be an ISO 8601 time or ms since 1970, got "yesterday"/);

    const file = await fetch(`${base}/api/recordings/${segment.id}/file`);
    assert.equal(file.status, 200);
    assert.equal(file.headers.get('content-type'), 'video/mp4');
    const bytes = Buffer.from(await file.arrayBuffer());
    assert.equal(createHash('md5').update(bytes).digest('hex'), md5Hex(join(recordingsDir(), segment.file!)));
    const range = await fetch(`${base}/api/recordings/${segment.id}/file`, { headers: { range: 'bytes=0-99' } });
    assert.equal(range.status, 206);
    assert.equal(Buffer.from(await range.arrayBuffer()).length, 100);
    for (const id of ['video-99999999', '..%2F..%2Fetc%2Fpasswd', encodeURIComponent(join(recordingsDir(), segment.file!)), `${segment.id}%00`]) {
      assert.equal((await fetch(`${base}/api/recordings/${id}/file`)).status, 404, id);
    }
    const page = await (await fetch(`${base}/wwwroot/index.html`)).text();
    assert.match(page, /recordings\.js/);
  });

  it('lists recent segments on the status page, which plays a local one', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/wwwroot/index.html`);
      const row = page.locator('#recording-segments tr[data-segment]').first();
      await row.waitFor({ timeout: 30_000 });
      assert.match(await page.locator('#recording-summary').innerText(), /\d+ written, \d+ queued .*\d+ uploaded/);
      await row.locator('button').click();
      // The player has decoded frames of the segment and moves through it.
      const video = "document.getElementById('recording-player')";
      await page.waitForFunction(`${video}.readyState >= 2 && ${video}.currentTime > 0.2 && ${video}.videoWidth === 320`, undefined, { timeout: 30_000 });
    } finally {
      await browser.close();
    }
  });

  it('reports recording in reported properties and counts it in /metrics', async () => {
    const r = await hub.waitForReported<ReportedDocument>(DEVICE, MODULE, (r) => (r.recording?.uploaded ?? 0) >= 2, { after: 0, timeoutMs: 60_000 });
    assert.ok(r.recording!.written >= 2);
    assert.deepEqual(Object.keys(r.recording!.targets).sort(), ['azure', 's3']);
    assert.equal(r.recording!.recorders.video?.state, 'recording');
    assert.equal(r.recording!.failed, 0);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.ok((sample(text, 'gst_iotedge_recording_segments_uploaded_total', { target: 'azure' }) ?? 0) >= 2, 'uploads counted');
    assert.ok((sample(text, 'gst_iotedge_recording_segments_written_total') ?? 0) >= 2, 'segments counted');
    assert.notEqual(sample(text, 'gst_iotedge_recording_bytes_pending'), null);
  });

  it('finalises the segment being written on SIGTERM (ffprobe plays it) and uploads it at the next start', async () => {
    // The storage goes away first, so the last segment can only go up after the restart.
    await Promise.all([azurite.stop(), s3.stop()]);
    const from = module.logs.length;
    const exit = await module.stop();
    assert.equal(exit.code, 0);
    const stopping = module.logs.findIndex((l, i) => i >= from && l.event === 'stopping');
    const last = module.logs.slice(stopping).find(queuedBy('recorder'));
    assert.ok(last, 'a segment was finalised and queued on the way out');
    assertPlays(join(recordingsDir(), last.file as string));
    await Promise.all([azurite.start(), s3.start()]);
    module = startModule();
    base = await webBase(module);
    const [azure, bucket] = await Promise.all([uploadedTo('azure', (b) => b.start === last.start), uploadedTo('s3', (b) => b.start === last.start)]);
    const local = md5Hex(join(recordingsDir(), last.file as string));
    assert.equal(azure.md5, bucket.md5);
    assert.equal((await azureObjects(azurite)).get(azure.objectName), local);
  });

  it('survives a SIGKILLed engine: the module restarts it, recording resumes, and nothing already closed is lost', async () => {
    const ready = await module.waitForLog((l) => l.event === 'engine-ready', 60_000);
    await module.waitForLog(queuedBy('recorder'), 60_000, module.logs.indexOf(ready));
    const closed = (await list()).segments;
    // Mid-segment, at once: the open file holds its first complete fragments (of about four), which the kill must not lose.
    const part = await partWithFragments(recordingsDir(), 1, 30_000);
    const from = module.logs.length;
    process.kill(ready.pid as number, 'SIGKILL');
    await module.waitForLog((l) => l.event === 'engine-died', 30_000, from);
    const again = await module.waitForLog((l) => l.event === 'engine-ready', 60_000, from);
    assert.notEqual(again.pid, ready.pid);
    await module.waitForLog(queuedBy('recorder'), 60_000, module.logs.indexOf(again));
    // The segment the killed engine was writing is cut to its last complete fragment and queued too.
    const recovered = await module.waitForLog(queuedBy('recovered'), 60_000, from);
    assert.equal(recovered.file, part.slice(0, -'.part'.length));
    assertPlays(join(recordingsDir(), recovered.file as string));
    assert.ok((recovered.durationMs as number) > 0, `recovered ${recovered.durationMs as number} ms`);
    for (const segment of closed.filter((s) => s.uploads.length < 2)) {
      await Promise.all([uploadedTo('azure', (b) => b.start === segment.start), uploadedTo('s3', (b) => b.start === segment.start)]);
    }
    const now = new Map((await list()).segments.map((s) => [s.id, s]));
    for (const segment of closed) {
      assert.equal(now.get(segment.id)?.state, 'uploaded', `${segment.id} (${segment.start}) is still there, uploaded`);
    }
    const blobs = await azureObjects(azurite);
    for (const segment of closed) {
      const name = new URL(now.get(segment.id)!.uploads.find((u) => u.target === 'azure')!.url).pathname.split('/').slice(3).map(decodeURIComponent).join('/');
      assert.equal(blobs.get(name), md5Hex(join(recordingsDir(), now.get(segment.id)!.file!)), name);
    }
  });
});

describe('bad record settings through the twin file', () => {
  let module: ModuleProcess;
  const desired = (record: unknown) => ({ ...LOOPBACK, http: { port: 0, address: '127.0.0.1', media_root: tempDir('gst-iotedge-media-') }, pipeline: PIPELINE, record });

  before(() => {
    module = new ModuleProcess({ desired: desired(RECORD), env: { STATE_DIR: tempDir('gst-iotedge-state-'), AZ_CONN: 'UseDevelopmentStorage=true' } });
    modules.push(module);
  });

  it('are rejected with the reason while the last good config keeps running and recording', async () => {
    await module.waitForLog(queuedBy('recorder'), 60_000);
    const running = await module.waitForReported((r) => r.config.status === 'applied' && r.recording?.recorders.video?.state === 'recording', { after: 0, timeoutMs: 30_000 });
    const from = module.logs.length;
    const azure = { type: 'azure-blob', container: 'recordings', connection_string: '$AZ_CONN' };
    const cases = [
      [{ ...RECORD, targets: [{ type: 'ftp', container: 'recordings' }] }, 'record.targets[0].type must be "azure-blob" or "s3", got "ftp"'],
      [{ ...RECORD, targets: [{ ...azure, container: undefined }] }, 'record.targets[0].container is required'],
      [{ ...RECORD, targets: [{ ...azure, connection_string: '$NO_SUCH_CONNECTION' }] }, 'record.targets[0].connection_string: environment variable NO_SUCH_CONNECTION is not set'],
      [{ ...RECORD, object_name: '{camera}/{day}/{start}.mp4' }, 'record.object_name: unknown field {day}'],
    ] as const;
    for (const [record, reason] of cases) {
      const after = module.reportedVersion();
      const version = module.writeDesired(desired(record));
      const r = await module.waitForReported((r) => r.config.rejectedVersion === version, { after, timeoutMs: 30_000 });
      assert.equal(r.config.status, 'rejected');
      assert.ok(r.config.error?.includes(reason), `"${r.config.error}" says "${reason}"`);
      assert.equal(r.config.appliedVersion, running.config.appliedVersion);
      await module.waitForLog((l) => l.event === 'config-rejected' && l.version === version, 10_000, from);
    }
    const rejected = module.logs.length;
    // Still the same pipeline and recorder: no state change, and segments keep coming.
    await module.waitForLog(queuedBy('recorder'), 30_000, rejected);
    assert.equal(module.logs.slice(from).filter((l) => l.event === 'pipeline-state' || l.event === 'recorder-state' || l.event === 'recording-started').length, 0);
    const r = module.reported().properties.reported;
    assert.equal(r.pipelines.main?.state, 'playing');
    assert.equal(r.recording?.recorders.video?.state, 'recording');
  });

  it('--check says why a twin with bad record settings is not valid', async () => {
    const twin = join(tempDir('gst-iotedge-check-'), 'bad.json');
    writeFileSync(twin, JSON.stringify({ pipeline: 'videotestsrc ! fakesink', record: { targets: [{ type: 'ftp' }] } }));
    const result = await run(process.execPath, [MAIN, '--check', twin]).then(() => null, (error: { code: number; stderr: string }) => error);
    assert.ok(result, '--check fails');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /record\.targets\[0\]\.type must be "azure-blob" or "s3", got "ftp"/);
  });
});
