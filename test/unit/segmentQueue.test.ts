import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { VerificationError } from '../../recording/errors.js';
import { SegmentQueue } from '../../recording/SegmentQueue.js';
import { parseRecordSettings } from '../../recording/settings.js';
import { openSegment } from '../../recording/localFile.js';
import type { UploadJob, UploadResult, UploadTarget } from '../../recording/target.js';
import { makeSegment } from '../support/recordingFixtures.js';

/** A target that does what each test says, and records the jobs it was given. */
function fakeTarget(behave: (job: UploadJob, attempt: number) => Promise<void> = async () => undefined): UploadTarget & { jobs: UploadJob[] } {
  const jobs: UploadJob[] = [];
  return {
    name: 'fake',
    type: 's3',
    jobs,
    async upload(job: UploadJob): Promise<UploadResult> {
      jobs.push(job);
      // As the real targets do: a file that is gone or changed is a SegmentFileError.
      await (await openSegment(job.path, job.size)).close();
      await behave(job, jobs.filter((j) => j.key === job.key).length);
      return { md5: 'bWQ1', url: `http://fake/${job.objectName}`, bytesSent: job.size, bytesSkipped: 0, unitsSkipped: 0, units: 1 };
    },
    close: () => undefined,
  };
}

describe('segment queue (fake target)', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function open(target: UploadTarget, root = mkdtempSync(join(tmpdir(), 'queue-')), beforeStart: (queue: SegmentQueue) => void = () => undefined) {
    dirs.push(root);
    const { settings } = parseRecordSettings({ local: { dir: join(root, 'recordings') }, upload: { initial_delay_ms: 10, max_delay_ms: 20 }, targets: [{ type: 's3', bucket: 'bucket' }] }, {});
    const queue = await SegmentQueue.open({
      stateDir: join(root, 'state'),
      recordingsDir: join(root, 'recordings'),
      camera: 'cam',
      objectName: settings!.objectName,
      local: settings!.local,
      upload: settings!.upload,
      targets: [target],
    });
    beforeStart(queue);
    await queue.start();
    return { queue, root };
  }

  const uploaded = (queue: SegmentQueue, n: number) =>
    new Promise<void>((resolve) => {
      let seen = 0;
      queue.observer.on('uploaded', () => ++seen === n && resolve());
    });

  it('gives up on a segment whose file vanished, reports it failed, and goes on with the next', async () => {
    const target = fakeTarget();
    const { queue, root } = await open(target);
    const failed = new Promise<string>((resolve) => queue.observer.on('failed', (e) => resolve(e.error)));
    queue.pause();
    const a = makeSegment(join(root, 'in'), 'video', 1_000, 10);
    const b = makeSegment(join(root, 'in'), 'video', 2_000, 10);
    await queue.add(a);
    await queue.add(b);
    unlinkSync(a.path);
    const done = uploaded(queue, 1);
    queue.resume();
    assert.match(await failed, /ENOENT/);
    await done;
    assert.deepEqual(target.jobs.map((j) => j.path), [a.path, b.path], 'tried once, then the next one');
    assert.equal(queue.stats().segmentsFailed, 1);
    await queue.close();
  });

  it('forgets an upload\'s progress when the stored object does not verify, and uploads it again', async () => {
    const target = fakeTarget(async (job, attempt) => {
      if (attempt === 1) {
        await job.saveResume({ kind: 's3', uploadId: 'u1' });
        throw new VerificationError('stored length differs');
      }
    });
    const { queue, root } = await open(target);
    const done = uploaded(queue, 1);
    await queue.add(makeSegment(join(root, 'in'), 'video', 1_000, 10));
    await done;
    assert.equal(target.jobs.length, 2);
    assert.equal(target.jobs[1]!.resume, null, 'the second try starts over');
    await queue.close();
  });

  it('deletes a file left behind by a crash after its upload was journalled', async () => {
    const target = fakeTarget();
    const { queue, root } = await open(target);
    const m = makeSegment(join(root, 'recordings'), 'video', 1_000, 10);
    const keep = `${m.path}.copy`;
    copyFileSync(m.path, keep);
    const done = uploaded(queue, 1);
    await queue.add(m);
    await done;
    await new Promise<void>((resolve) => queue.observer.once('local-deleted', () => resolve()));
    assert.equal(existsSync(m.path), false);
    // The process "died" before unlink: the file is back, and the journal says it is gone.
    copyFileSync(keep, m.path);
    unlinkSync(keep);
    await queue.scan();
    assert.equal(existsSync(m.path), false, 'the scan finished the deletion');
    assert.equal(target.jobs.length, 1, 'and did not upload it twice');
    await queue.close();
  });

  it('resumes from the journal after a restart with the same job key, and never queues a file twice', async () => {
    let release: () => void = () => undefined;
    const target = fakeTarget(async (job, attempt) => {
      if (attempt === 1) {
        await job.saveResume({ kind: 's3', uploadId: 'u1' });
        await new Promise<void>((resolve) => (release = resolve));
        throw new Error('network down');
      }
    });
    const { queue, root } = await open(target);
    const m = makeSegment(join(root, 'recordings'), 'video', 1_000, 10);
    const saved = new Promise<void>((resolve) => queue.observer.once('upload-started', () => setTimeout(resolve, 50)));
    await queue.add(m);
    await saved;
    queue.pause();
    release();
    await queue.close();

    const second = fakeTarget();
    let done: Promise<void> = Promise.resolve();
    const { queue: again } = await open(second, root, (q) => (done = uploaded(q, 1)));
    await done;
    assert.equal(second.jobs.length, 1, 'queued once (journal and scan agree on the file)');
    assert.equal(second.jobs[0]!.key, target.jobs[0]!.key, 'the same key: blocks and parts staged before are found again');
    assert.deepEqual(second.jobs[0]!.resume, { kind: 's3', uploadId: 'u1' });
    await again.close();
  });
});
