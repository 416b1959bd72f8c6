import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readMp4Layout, trimToCompleteBoxes } from '../../recording/mp4.js';

function box(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, body]);
}

/** mvhd version 0: timescale 1000, the given duration. */
function mvhd(durationMs: number): Buffer {
  const body = Buffer.alloc(100);
  body.writeUInt32BE(1000, 12);
  body.writeUInt32BE(durationMs, 16);
  return box('mvhd', body);
}

describe('MP4 layout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp4-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the duration and the complete fragments of a finished fragmented file', async () => {
    const path = join(dir, 'done.mp4');
    const file = Buffer.concat([box('ftyp', Buffer.alloc(8)), box('moov', mvhd(4000)), box('moof', Buffer.alloc(20)), box('mdat', Buffer.alloc(100)), box('moof', Buffer.alloc(20)), box('mdat', Buffer.alloc(50))]);
    writeFileSync(path, file);
    const layout = await readMp4Layout(path);
    assert.deepEqual(layout, { completeLength: file.length, size: file.length, playable: true, fragments: 2, durationMs: 4000 });
  });

  it('cuts a killed writer\'s file after its last complete fragment: no moof without its mdat, no half box', async () => {
    const path = join(dir, 'killed.mp4');
    const complete = Buffer.concat([box('ftyp', Buffer.alloc(8)), box('moov', mvhd(0)), box('moof', Buffer.alloc(20)), box('mdat', Buffer.alloc(100))]);
    const half = box('mdat', Buffer.alloc(200)).subarray(0, 120);
    writeFileSync(path, Buffer.concat([complete, box('moof', Buffer.alloc(20)), half]));
    const layout = await trimToCompleteBoxes(path);
    assert.equal(layout.size, complete.length);
    assert.equal(layout.fragments, 1);
    assert.equal(layout.durationMs, null, 'mvhd says 0: unknown');
    assert.deepEqual(readFileSync(path), complete);
  });

  it('says a file without its moov is not playable', async () => {
    const path = join(dir, 'early.mp4');
    writeFileSync(path, Buffer.concat([box('ftyp', Buffer.alloc(8)), box('moov', Buffer.alloc(400)).subarray(0, 100)]));
    const layout = await readMp4Layout(path);
    assert.equal(layout.playable, false);
  });
});
