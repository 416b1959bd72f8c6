/**
 * The big fuzz run (`npm run fuzz`): the generators of test/integration/fuzz.test.ts with thousands of inputs per
 * surface, each surface against a module of its own (started fresh, so what one surface breaks cannot show up as
 * another's), followed by the stay-up checks. Prints per surface the inputs tried, the answers by class, the
 * problems and the stay-up verdict, and keeps the module's output in a file; exits 1 if anything failed.
 *
 *   npm run fuzz                                   # 10,000 inputs per surface, a fresh seed
 *   npm run fuzz -- --count 2000 --only whep,http  # fewer, some surfaces
 *   FUZZ_SEED=1234 npm run fuzz                    # replay a run
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runSeed } from '../test/support/fuzzRandom.js';
import { formatReport, fuzzSurface } from '../test/support/fuzzRunner.js';
import { fuzzSurfaces } from '../test/support/fuzzSurfaces.js';
import { FuzzTarget } from '../test/support/fuzzTarget.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '10000' }, only: { type: 'string' } } });
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a positive whole number, got ${values.count}`);
const only = values.only?.split(',').filter(Boolean);
const seed = runSeed();
console.log(`[fuzz] seed ${seed} (replay: FUZZ_SEED=${seed}), ${count} inputs per surface`);

const started = Date.now();
let failed = false;
for (const { surface } of fuzzSurfaces().filter(({ surface }) => !only || only.includes(surface.name))) {
  const target = await FuzzTarget.start();
  try {
    const report = await fuzzSurface(surface, target, seed, count);
    console.log(formatReport(report));
    for (const problem of report.problems) console.log(`  problem ${problem}`);
    if (report.problemCount > report.problems.length) console.log(`  ... and ${report.problemCount - report.problems.length} more`);
    const up = await target.stayUpProblems();
    console.log(`[fuzz] ${surface.name} stay-up: ${up.length === 0 ? 'process alive, one engine, main pipeline untouched, /api/status answers, RTSP and WebRTC viewers still play, no secret in the output' : `${up.length} problem(s)`}`);
    for (const problem of up) console.log(`  stay-up ${problem}`);
    if (report.problemCount > 0 || up.length > 0) failed = true;
  } finally {
    const log = join(tmpdir(), `gst-iotedge-fuzz-${seed}-${surface.name}.log`);
    writeFileSync(log, `${target.module.output.join('\n')}\n`);
    console.log(`[fuzz] ${surface.name}: the module's output is in ${log}`);
    await target.close();
  }
}
console.log(`[fuzz] ${failed ? 'FAILED' : 'passed'} in ${((Date.now() - started) / 1000).toFixed(0)} s (FUZZ_SEED=${seed})`);
process.exit(failed ? 1 : 0);
