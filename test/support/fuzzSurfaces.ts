import { httpSurface } from './fuzzHttp.js';
import { rtspSurface } from './fuzzRtsp.js';
import type { FuzzSurface } from './fuzzRunner.js';
import { signallingSurface } from './fuzzSignalling.js';
import { twinSurface } from './fuzzTwin.js';
import { whepSurface } from './fuzzWhep.js';

/**
 * Every surface the module shows a client or an operator, in the order the suites run them, with the count of
 * inputs `npm test` sends (small, to keep the file near 90 s on two cores; `npm run fuzz` sends thousands).
 * The WebRTC surfaces go last: they are the ones that have broken the engine (a peer teardown that deadlocks), and
 * what they break would show in every later surface's stay-up check too.
 */
export function fuzzSurfaces(): Array<{ surface: FuzzSurface; testCount: number }> {
  return [
    { surface: httpSurface(), testCount: 300 },
    { surface: rtspSurface(), testCount: 200 },
    { surface: twinSurface(), testCount: 120 },
    { surface: whepSurface(), testCount: 150 },
    { surface: signallingSurface(), testCount: 120 },
  ];
}
