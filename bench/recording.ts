/**
 * Recording benchmarks, each against a baseline measured in the same run (three runs, median and spread):
 *   cpu:    CPU of a node-gtk process whose producer encodes 1080p30 H.264 into the sample hub and whose Recorder
 *           writes fragmented MP4 segments, vs one gst-launch-1.0 doing the same encode into splitmuxsink
 *           (goal <= 1.10); an encode-only gst-launch shows what the recording itself costs in each;
 *   upload: throughput of the durable queue (resumable blocks/parts, MD5s, journal writes, verification) vs the
 *           SDK's own one-call upload of the same files (Azure `uploadFile`, S3 `PutObject`), same servers
 *           (azurite, s3rver on loopback), same run (goal >= 0.9); and the delay from a segment's close (handed
 *           to the queue) to its verified upload with segments arriving at a recorder's pace (median, p95).
 * Env: CPU_SIZE (1920x1080), WINDOW_S (8), RUNS (3), UPLOAD_FILES (6), UPLOAD_MIB (16), PACED (10).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { cpuSeconds, median } from './cpu.js';
import { Redactor } from '../config/redact.js';
import type { SegmentUploadedEvent } from '../recording/events.js';
import { Recordings } from '../recording/Recordings.js';
import { parseRecordSettings } from '../recording/settings.js';
import { JsonChild } from '../test/support/jsonChild.js';
import { RECORDER_HARNESS, producerLaunch, type RecorderHarnessOptions } from '../test/support/recorderHarness.js';
import { azureTarget, BUCKET, CONTAINER, createContainer, makeSegment, s3Client, s3Target, storageEnv, type MadeSegment } from '../test/support/recordingFixtures.js';
import { AzuriteServer, S3rverServer } from '../test/support/storageServers.js';

const WINDOW_MS = Number(process.env.WINDOW_S ?? 8) * 1000;
const RUNS = Number(process.env.RUNS ?? 3);
const MIB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spread(values: number[], digits = 3): string {
  return `median ${median(values).toFixed(digits)} (min ${Math.min(...values).toFixed(digits)}, max ${Math.max(...values).toFixed(digits)})`;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function cpuLoad(pids: number[], windowMs: number): Promise<number> {
  const c0 = cpuSeconds(pids);
  const t0 = performance.now();
  await sleep(windowMs);
  return (cpuSeconds(pids) - c0) / ((performance.now() - t0) / 1000);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await exited;
}

async function cpu(): Promise<void> {
  const [w, h] = (process.env.CPU_SIZE ?? '1920x1080').split('x').map(Number);
  const options: RecorderHarnessOptions = { dir: '', segmentMs: 10_000, fragmentMs: 1_000, audio: false, width: w!, height: h!, bitrate: 4000, keyInt: 30 };
  const producer = producerLaunch(options).replace(/ ! appsink name=video.*$/, '');
  const ratios: number[] = [];
  const rows: string[] = [];
  for (let run = 0; run < RUNS; run++) {
    const loads: Record<string, number> = {};
    for (const kind of ['recorder', 'gst-launch', 'encode-only'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'bench-rec-'));
      let pids: number[];
      let stop: () => Promise<void>;
      if (kind === 'recorder') {
        const child = new JsonChild(RECORDER_HARNESS, [JSON.stringify({ ...options, dir })]);
        await child.waitFor((e) => e.type === 'opened', 30_000);
        pids = [child.child.pid!];
        stop = async () => {
          await child.kill('SIGTERM');
        };
      } else {
        const sink =
          kind === 'gst-launch'
            ? `splitmuxsink async-finalize=true muxer-factory=mp4mux muxer-properties=properties,fragment-duration=(uint)1000 max-size-time=10000000000 location=${dir}/v%05d.mp4`
            : 'fakesink sync=false';
        const gst = spawn('gst-launch-1.0', ['-q', '-e', ...`${producer} ! ${sink}`.split(' ')], { stdio: 'ignore' });
        pids = [gst.pid!];
        stop = () => stopChild(gst);
      }
      await sleep(2_000);
      loads[kind] = await cpuLoad(pids, WINDOW_MS);
      await stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const ratio = loads.recorder! / loads['gst-launch']!;
    ratios.push(ratio);
    rows.push(
      `  run ${run + 1}: recorder ${loads.recorder!.toFixed(3)} CPU-s/s, gst-launch splitmuxsink ${loads['gst-launch']!.toFixed(3)}, encode only ${loads['encode-only']!.toFixed(3)} ` +
        `(recording itself: module ${(loads.recorder! - loads['encode-only']!).toFixed(3)}, gst-launch ${(loads['gst-launch']! - loads['encode-only']!).toFixed(3)}); ratio ${ratio.toFixed(3)}`,
    );
  }
  console.log(`cpu: record ${w}x${h}@30 H.264 (x264 ultrafast 4 Mb/s), ${WINDOW_MS / 1000} s windows`);
  for (const row of rows) console.log(row);
  console.log(`cpu ratio recorder / gst-launch: ${spread(ratios)} (goal <= 1.10)`);
}

/** A Recordings instance uploading to one target, with the time each segment was handed over and uploaded. */
async function queueFor(stateDir: string, target: 'azure' | 's3', env: NodeJS.ProcessEnv) {
  const { settings, secrets } = parseRecordSettings(
    { camera: 'bench', local: { dir: join(stateDir, 'recordings'), max_bytes: 10 * 1024 * MIB }, upload: { concurrency: 4 }, targets: [target === 'azure' ? azureTarget : s3Target] },
    env,
  );
  const redactor = new Redactor();
  redactor.add(secrets);
  const recordings = await Recordings.open(settings!, { stateDir, redact: (t) => redactor.redact(t) });
  const uploadedAt = new Map<string, number>();
  const waiters = new Set<() => void>();
  recordings.observer.on('uploaded', (e: SegmentUploadedEvent) => {
    uploadedAt.set(e.objectName, performance.now());
    for (const w of waiters) w();
  });
  await recordings.start();
  const waitFor = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (uploadedAt.size >= count) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
    });
  return { recordings, uploadedAt, waitFor };
}

/** The SDK's multipart calls and nothing else: no MD5s, no journal, no read-back. */
async function plainMultipart(client: S3Client, key: string, path: string, partSize: number, concurrency: number): Promise<void> {
  const data = readFileSync(path);
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  const parts: Array<{ PartNumber: number; ETag: string }> = [];
  const count = Math.ceil(data.length / partSize);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const answer = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body: data.subarray(i * partSize, (i + 1) * partSize) }));
        parts[i] = { PartNumber: i + 1, ETag: answer.ETag! };
      }
    }),
  );
  await client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}

async function upload(): Promise<void> {
  const files = Number(process.env.UPLOAD_FILES ?? 6);
  const mib = Number(process.env.UPLOAD_MIB ?? 16);
  const paced = Number(process.env.PACED ?? 10);
  const [azurite, s3] = await Promise.all([AzuriteServer.create(), S3rverServer.create()]);
  await createContainer(azurite);
  const env = storageEnv(azurite, s3);
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER);
  const s3client = s3Client(s3);
  const work = mkdtempSync(join(tmpdir(), 'bench-upload-'));
  try {
    for (const target of ['azure', 's3'] as const) {
      const ratios: number[] = [];
      const mpRatios: number[] = [];
      const rows: string[] = [];
      const delays: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const made: MadeSegment[] = Array.from({ length: files }, (_, i) => makeSegment(join(work, `in-${target}-${run}`), 'video', Date.UTC(2025, 0, 1 + run) + i * 60_000, mib * MIB));
        const serverPid = (target === 'azure' ? azurite.pid : s3.pid)!;
        /** Client (this process) and server CPU ms per MiB over a phase. */
        const cpuMark = () => ({ client: process.cpuUsage(), server: cpuSeconds([serverPid]) });
        const cpuPerMiB = (mark: ReturnType<typeof cpuMark>) => {
          const c = process.cpuUsage(mark.client);
          return { client: (c.user + c.system) / 1000 / (files * mib), server: ((cpuSeconds([serverPid]) - mark.server) * 1000) / (files * mib) };
        };
        // Baseline first: the SDK's one call per file, one file after another (as the queue does).
        const bCpu = cpuMark();
        const b0 = performance.now();
        for (const [i, m] of made.entries()) {
          const name = `baseline/${target}/${run}/${i}.mp4`;
          if (target === 'azure') await container.getBlockBlobClient(name).uploadFile(m.path);
          else await s3client.send(new PutObjectCommand({ Bucket: BUCKET, Key: name, Body: readFileSync(m.path) }));
        }
        const baseline = (files * mib) / ((performance.now() - b0) / 1000);
        const baselineCpu = cpuPerMiB(bCpu);
        // S3 only: the SDK's own multipart calls with the queue's parts and concurrency, nothing else (s3rver
        // copies the parts into the object on completion, a cost of the server that PutObject does not have).
        let multipart: number | null = null;
        if (target === 's3') {
          const m0 = performance.now();
          for (const [i, m] of made.entries()) await plainMultipart(s3client, `baseline-mp/${run}/${i}.mp4`, m.path, 5 * MIB, 4);
          multipart = (files * mib) / ((performance.now() - m0) / 1000);
        }
        const stateDir = mkdtempSync(join(work, 'state-'));
        const q = await queueFor(stateDir, target, env);
        const qCpu = cpuMark();
        const q0 = performance.now();
        for (const m of made) await q.recordings.queue.add(m);
        await q.waitFor(files);
        const through = (files * mib) / ((performance.now() - q0) / 1000);
        const queueCpu = cpuPerMiB(qCpu);
        await q.recordings.close();
        ratios.push(through / baseline);
        if (multipart !== null) mpRatios.push(through / multipart);
        rows.push(
          `  run ${run + 1}: queue ${through.toFixed(1)} MiB/s, SDK ${baseline.toFixed(1)} MiB/s, ratio ${(through / baseline).toFixed(3)}` +
            (multipart !== null ? `; plain SDK multipart ${multipart.toFixed(1)} MiB/s, ratio ${(through / multipart).toFixed(3)}` : '') +
            ` | CPU ms/MiB client+server: queue ${queueCpu.client.toFixed(1)}+${queueCpu.server.toFixed(1)}, SDK ${baselineCpu.client.toFixed(1)}+${baselineCpu.server.toFixed(1)}`,
        );

        // Paced: a 2 MiB segment every second, as a 16 Mb/s recorder with 1 s segments would hand them over.
        const pacedDir = mkdtempSync(join(work, 'paced-'));
        const p = await queueFor(pacedDir, target, env);
        const handedAt = new Map<string, number>();
        for (let i = 0; i < paced; i++) {
          const m = makeSegment(join(work, `paced-${target}-${run}`), 'video', Date.UTC(2025, 1, 1 + run) + i * 1_000, 2 * MIB);
          const entry = await p.recordings.queue.add(m);
          handedAt.set(entry.objectName, performance.now());
          await sleep(1_000);
        }
        await p.waitFor(paced);
        for (const [name, at] of handedAt) delays.push(p.uploadedAt.get(name)! - at);
        await p.recordings.close();
      }
      console.log(`upload ${target === 'azure' ? 'Azure Blob (azurite)' : 'S3 (s3rver)'}: ${files} files of ${mib} MiB, queue (4 MiB blocks/parts x4, MD5 per block, journal, read-back) vs SDK ${target === 'azure' ? 'uploadFile' : 'PutObject'}`);
      for (const row of rows) console.log(row);
      console.log(`upload ratio queue / SDK: ${spread(ratios)} (goal >= 0.9)`);
      if (mpRatios.length > 0) console.log(`upload ratio queue / plain SDK multipart (same parts): ${spread(mpRatios)}`);
      console.log(`close -> verified upload, ${paced} x 2 MiB at 1/s, ${RUNS} runs: median ${median(delays).toFixed(0)} ms, p95 ${percentile(delays, 95).toFixed(0)} ms`);
    }
  } finally {
    s3client.destroy();
    await Promise.all([azurite.dispose(), s3.dispose()]);
    rmSync(work, { recursive: true, force: true });
  }
}

const only = process.argv[2];
if (!only || only === 'cpu') await cpu();
if (!only || only === 'upload') await upload();
process.exit(0);
