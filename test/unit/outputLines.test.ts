import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutputLines } from '../../actors/outputLines.js';

describe('engine output lines', () => {
  it('splits chunks into lines, across chunk boundaries', () => {
    const lines: string[] = [];
    const out = new OutputLines((l) => lines.push(l));
    out.push(Buffer.from('one\ntw'));
    out.push(Buffer.from('o\nthree'));
    out.end();
    assert.deepEqual(lines, ['one', 'two', 'three']);
  });

  it('cuts a line longer than the limit and never holds more than the limit of it', () => {
    const lines: string[] = [];
    const out = new OutputLines((l) => lines.push(l), { maxLineBytes: 10, maxLinesPerSecond: 100 });
    // 5 MB of "video" without a newline, in 64 KiB chunks, then a normal line.
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 80; i++) out.push(chunk);
    out.push(Buffer.from('\nnext\n'));
    assert.deepEqual(lines, [`AAAAAAAAAA [... ${80 * 64 * 1024 - 10} more bytes cut]`, 'next']);
  });

  it('passes at most the rate limit and says how many lines it dropped', () => {
    let now = 0;
    const lines: string[] = [];
    const out = new OutputLines((l) => lines.push(l), { maxLineBytes: 100, maxLinesPerSecond: 3 }, () => now);
    out.push(Buffer.from('a\nb\nc\nd\ne\n'));
    assert.deepEqual(lines, ['a', 'b', 'c']);
    now = 1_000;
    out.push(Buffer.from('f\n'));
    assert.deepEqual(lines, ['a', 'b', 'c', '[2 lines of output dropped: more than 3 a second]', 'f']);
  });

  it('shows binary as ? so that a logged line stays within the limit once JSON-escaped', () => {
    const lines: string[] = [];
    const out = new OutputLines((l) => lines.push(l), { maxLineBytes: 64, maxLinesPerSecond: 100 });
    out.push(Buffer.concat([Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x1b]), Buffer.from('ok\n')]));
    assert.deepEqual(lines, ['?????ok']);
    assert.ok(JSON.stringify(lines[0]).length <= 64 + 2);
  });
});
