import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FuzzRandom } from './fuzzRandom.js';
import { show, type FuzzOutcome, type FuzzSurface } from './fuzzRunner.js';

/** The twin's keys (README); no generated unknown key may be one of them. */
const KNOWN_KEYS = ['pipeline', 'rtsp_pipeline', 'webrtc_pipeline', 'http_server', 'pipelines', 'on_eos', 'restart_policy', 'rtsp', 'http', 'metrics', 'webrtc'];
/** A reason that is the runtime's, not the validator's: the document was not understood, it broke something. */
const INTERNAL_ERROR = /Maximum call stack|RangeError|TypeError|ReferenceError|is not a function|Cannot read prop|of undefined|of null|\[object Object\]/;

/** One twin file: its bytes, and what the README says must come of it. */
interface TwinDocument {
  readonly kind: string;
  readonly bytes: Buffer;
  readonly expect: 'applied' | 'rejected' | 'either';
  readonly describe: string;
}

/** JSON text of `object` with `extra` members (JSON text each) spliced in: keys JSON.stringify would not write. */
function withMembers(object: Record<string, unknown>, extra: ReadonlyArray<[string, string]>): string {
  const own = JSON.stringify(object);
  if (extra.length === 0) return own;
  const members = extra.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',');
  return own === '{}' ? `{${members}}` : `${own.slice(0, -1)},${members}}`;
}

/**
 * A key that is none of the twin's, nor `desired` or `properties`, which make the document a wrapper around another
 * desired object (README: `{"properties":{"desired":...}}`, `{"desired":...}`).
 */
function unknownKey(rng: FuzzRandom): string {
  for (;;) {
    const key = rng.chance(0.8) ? rng.string(30) : rng.pick(['__proto__', 'constructor', 'prototype', '', 'Pipeline', 'PIPELINE', ' pipeline', 'pipeline\u0000', 'Desired']);
    if (![...KNOWN_KEYS, 'desired', 'properties'].includes(key) && !key.startsWith('$')) return key;
  }
}

/**
 * Values that make each key invalid whatever the rest says, so the document is refused and the running config stays
 * (a valid one might legitimately stop the main pipeline or move a port, which is not what is tested here).
 */
function poison(rng: FuzzRandom, base: Record<string, unknown>): [string, unknown] {
  const notString = () => rng.pick([1, 0, true, false, [], {}, [base.pipeline], { pipeline: base.pipeline }, 1e308]);
  const badPort = () => rng.pick([-1, 65536, 1.5, '0', '8554', true, [], {}, 1e308, -0.5]);
  const badAddress = () => rng.pick(['', 1, true, [], {}]);
  const badName = () => rng.pick(['', '1abc', 'a'.repeat(33), rng.nonAscii(rng.int(1, 40)), 'a b', 'a/b', 'main', '-x', 'a'.repeat(rng.int(1000, 200_000))]);
  // RTSP mount names follow their own rule (schema: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$): `1abc`, `main` and 33
  // letters are good mount names (the 10,000-input run counted them as wrongly applied).
  const badMount = () => rng.pick(['', rng.nonAscii(rng.int(1, 40)), 'a b', 'a/b', '-x', '.x', 'a'.repeat(65), 'a'.repeat(rng.int(1000, 200_000))]);
  const object = (key: string) => ({ ...(base[key] as Record<string, unknown> | undefined) });
  const choices: Array<() => [string, unknown]> = [
    () => ['pipeline', notString()],
    () => ['rtsp_pipeline', notString()],
    () => ['webrtc_pipeline', notString()],
    () => ['http_server', rng.pick([1, 0, 'false', 'true', [], {}])],
    () => ['pipelines', rng.pick(['fakesrc ! fakesink', 1, [], true, [['fz', 'fakesrc ! fakesink']]])],
    () => ['pipelines', { [badName()]: 'fakesrc ! fakesink' }],
    () => ['pipelines', { fz: rng.pick([1, true, [], { pipeline: '' }, { pipeline: 1 }, { pipeline: 'fakesrc ! fakesink', on_eos: rng.pick(['never', 1, '']) }, { on_eos: 'stop' }]) }],
    () => ['on_eos', rng.pick(['RESTART', 'Stop', '', 1, true, [], {}])],
    () => ['restart_policy', rng.pick(['fast', 1, [], true])],
    () => ['restart_policy', { [rng.pick(['initial_delay_ms', 'max_delay_ms', 'start_timeout_ms', 'stop_timeout_ms', 'stable_after_ms'])]: rng.pick([-1, 86_400_001, 'x', true, [], {}, 1e308]) }],
    () => ['restart_policy', { initial_delay_ms: 1000, max_delay_ms: rng.int(0, 999) }],
    () => ['rtsp', rng.pick(['x', 1, [], true])],
    () => ['rtsp', { ...object('rtsp'), port: badPort() }],
    () => ['rtsp', { ...object('rtsp'), address: badAddress() }],
    () => ['rtsp', { ...object('rtsp'), mounts: rng.pick(['x', 1, [], true, { [badMount()]: '( fakesrc ! fakesink )' }, { cam: 1 }, { cam: '' }, { cam: [] }, { player: '( fakesrc ! fakesink )' }]) }],
    () => ['http', rng.pick(['x', 1, [], true])],
    () => ['http', { ...object('http'), port: badPort() }],
    () => ['http', { ...object('http'), address: badAddress() }],
    () => ['http', { ...object('http'), media_root: rng.pick(['relative/path', '', 1, [], 'media', '~/x', '$UNSET_FUZZ_ROOT']) }],
    () => ['metrics', rng.pick(['x', 1, [], true])],
    () => ['metrics', { port: badPort() }],
    () => ['metrics', { port: null, address: badAddress() }],
    () => ['webrtc', rng.pick(['x', 1, [], true])],
    () => ['webrtc', { ...object('webrtc'), mode: rng.pick(['both', 'SHARED', '', 1, [], 'per-viewer']) }],
    () => ['webrtc', { ...object('webrtc'), max_peers: rng.pick([0, -1, 1001, 1.5, '10', [], 1e308]) }],
    () => ['webrtc', { ...object('webrtc'), negotiation_timeout_ms: rng.pick([0, 600_001, 1.5, '1000', []]) }],
    () => ['webrtc', { ...object('webrtc'), stun_server: rng.pick(['http://x', 'stun:x', '', 1, [], {}]) }],
    () => ['webrtc', { ...object('webrtc'), turn_servers: rng.pick(['turn://x', [1], ['http://x'], {}, [null], ['turn://x:$UNSET_FUZZ_TURN@h:1']]) }],
    () => ['webrtc', { ...object('webrtc'), advertised_host: rng.pick(['a b', 'é', '', 1, [], 'a/b', rng.nonAscii(30)]) }],
    // Variables: unset, unterminated, not a name.
    () => ['pipeline', `${base.pipeline as string} ${rng.pick(['$UNSET_FUZZ_VAR', '${UNSET_FUZZ_VAR}', '${', '${bad-name}', '${1X}', '${ }'])}`],
  ];
  return rng.pick(choices)();
}

/** A launch line GStreamer's parser (in the engine) has to get through: nesting, quotes, links, caps, sizes. */
function hostileLaunch(rng: FuzzRandom): string {
  const simple = rng.pick(['fakesrc num-buffers=1 ! fakesink', 'videotestsrc is-live=true num-buffers=2 ! fakesink', 'audiotestsrc num-buffers=1 ! fakesink']);
  return rng.pick([
    () => rng.mutate(simple),
    () => `${'('.repeat(rng.int(1, 20_000))}${simple}${rng.chance() ? ')'.repeat(rng.int(0, 20_000)) : ''}`,
    () => `${simple} ${'!'.repeat(rng.int(1, 5000))}`,
    () => `fakesrc num-buffers=1 name=${'a'.repeat(rng.int(1000, 1_000_000))} ! fakesink`,
    () => Array.from({ length: rng.int(2, 2000) }, () => 'identity').join(' ! ').replace(/^/, 'fakesrc num-buffers=1 ! ').concat(' ! fakesink'),
    () => `fakesrc num-buffers=1 ! ${rng.pick(['a.', 'b. ! c.', '.', '..', 'x.y', '!'])} ! fakesink`,
    () => `fakesrc num-buffers=1 ! video/x-raw,width=(int)${rng.numberText()},format=${rng.string(10).replace(/[\s!]/g, '')} ! fakesink`,
    () => `fakesrc num-buffers=1 ! "${rng.string(50)}`,
    () => `fakesrc num-buffers=1 ${rng.string(20)}=${rng.string(50)} ! fakesink`,
    () => `${rng.nonAscii(rng.int(1, 50))} ! fakesink`,
    () => rng.string(300),
    () => `fakesrc num-buffers=1 ! fakesink ${Array.from({ length: rng.int(1, 3000) }, (_, i) => `p${i}=1`).join(' ')}`,
  ])();
}

/** Builds document `n` of a run from the running config `base`. */
function build(rng: FuzzRandom, base: Record<string, unknown>, n: number): TwinDocument {
  const roll = rng.next();
  const version = n + 1_000;
  const text = (kind: string, body: string, expect: TwinDocument['expect']): TwinDocument => ({ kind, bytes: Buffer.from(body), expect, describe: show(body) });
  const noise = (): Array<[string, string]> => Array.from({ length: rng.int(0, 3) }, () => [unknownKey(rng), JSON.stringify(rng.json(3)) ?? 'null']);
  if (roll < 0.08) {
    const valid = JSON.stringify({ ...base, $version: version });
    const body = rng.pick([
      () => rng.string(200),
      () => valid.slice(0, rng.int(0, valid.length - 1)),
      () => `${valid}${rng.pick([',', '}', 'x', '{}', '\u0000', '// comment'])}`,
      () => `${valid.slice(0, 1)}${rng.string(5) || ','}${valid.slice(1)}`,
      () => rng.pick(['', '   ', '\n', 'null null', '{', '}', '[', '{"properties":', "{'pipeline': 'x'}"]),
    ])();
    let parses = true;
    try {
      JSON.parse(body);
    } catch {
      parses = false;
    }
    return parses ? text('not-json', '{"properties":', 'rejected') : text('not-json', body, 'rejected');
  }
  if (roll < 0.12) {
    const bytes = Buffer.from(JSON.stringify({ ...base, $version: version }));
    const at = rng.int(0, bytes.length);
    // Outside any string value: before the first quote, so the document cannot parse.
    const raw = Buffer.from(rng.bytes(rng.int(1, 8)).map((b) => b | 0x80));
    return { kind: 'non-utf8-outside', bytes: Buffer.concat([bytes.subarray(0, Math.min(at, 1)), raw, bytes.subarray(Math.min(at, 1))]), expect: 'rejected', describe: `non-UTF-8 bytes ${raw.toString('hex')} at 1` };
  }
  if (roll < 0.16) {
    // Inside the value of an unknown key: UTF-8 decoding turns them into U+FFFD and the document is valid.
    const raw = Buffer.from(rng.bytes(rng.int(1, 200)).map((b) => b | 0x80));
    const head = Buffer.from(withMembers({ ...base, $version: version }, [['fuzz_bytes', '"']]).slice(0, -2));
    return { kind: 'non-utf8-in-string', bytes: Buffer.concat([head, Buffer.from('"'), raw, Buffer.from('"}')]), expect: 'applied', describe: `non-UTF-8 bytes ${raw.toString('hex').slice(0, 40)} in a string` };
  }
  if (roll < 0.24) return text('non-object', rng.pick([() => JSON.stringify(rng.json(3)) ?? 'null', () => rng.deepText(rng.int(10, 100_000)).replace(/^\{.*/, '[[[]]]'), () => '[]', () => '"pipeline"', () => '42', () => 'true', () => 'null'])().replace(/^\{.*\}$/s, '[{}]'), 'rejected');
  if (roll < 0.5) {
    const [key, value] = poison(rng, base);
    const body = withMembers({ ...base, [key]: value, $version: version }, noise());
    return { ...text('wrong-type', body, 'rejected'), describe: `${key}: ${show(JSON.stringify(value) ?? 'undefined', 100)} in ${show(body, 60)}` };
  }
  if (roll < 0.58) {
    const [key, value] = poison(rng, base);
    const huge = rng.string(8).repeat(Math.ceil(rng.int(300_000, 2_500_000) / 8));
    const body = withMembers({ ...base, [key]: value, $version: version }, [['fuzz_huge', JSON.stringify(huge)]]);
    return { ...text('huge-string-rejected', body, 'rejected'), describe: `${key}: ${show(JSON.stringify(value) ?? '', 80)} with a ${body.length}-byte document` };
  }
  if (roll < 0.62) {
    const size = rng.pick([rng.int(100_000, 1_000_000), rng.int(1_048_577, 3_000_000)]);
    const body = withMembers({ ...base, $version: version }, [['fuzz_padding', JSON.stringify('x'.repeat(size))]]);
    return { ...text('huge-valid', body, size > 1_048_576 ? 'either' : 'applied'), describe: `a valid ${body.length}-byte document` };
  }
  if (roll < 0.7) {
    const depth = rng.int(1_000, 200_000);
    return rng.pick([
      // properties.desired missing at every level: refused; finding its $version walks the whole chain.
      () => text('deep', `${'{"properties":'.repeat(depth)}{}${'}'.repeat(depth)}`, 'rejected'),
      () => text('deep', `{"properties":{"desired":${'['.repeat(depth)}${']'.repeat(depth)}}}`, 'rejected'),
      () => text('deep', withMembers({ ...base, $version: version }, [['pipelines', rng.deepText(depth).replace(/^\{/, '[{').replace(/\}$/, '}]')]]), 'rejected'),
      // Deep under a key the module ignores: valid by shape; a depth limit may refuse it, with its reason.
      () => text('deep', `{"properties":{"desired":${withMembers({ ...base, $version: version }, [['fuzz_deep', rng.deepText(depth)]])}}}`, 'either'),
      () => text('deep', withMembers({ ...base, $version: version }, [['fuzz_deep', rng.deepText(depth)]]), 'either'),
    ])();
  }
  if (roll < 0.78) {
    const versionText = rng.pick([() => rng.numberText(), () => JSON.stringify(rng.json(2)) ?? 'null', () => '"7"', () => String(-version), () => '1e400', () => '[]', () => '{"$version":1}'])();
    const { $version: _ignored, ...rest } = base;
    const inner = withMembers(rest, [['$version', versionText]]);
    const body = rng.pick([
      () => inner,
      () => `{"$version":${rng.numberText()},"properties":{"desired":${inner}}}`,
      () => `{"properties":{"$version":${versionText},"desired":${inner}}}`,
      () => `${inner.slice(0, -1)},"$version":${rng.numberText()}}`,
    ])();
    return text('version-games', body, 'applied');
  }
  if (roll < 0.86) {
    const members = Array.from({ length: rng.pick([1, 5, 50, rng.int(100, 5_000)]) }, () => [unknownKey(rng), JSON.stringify(rng.json(3)) ?? 'null'] as [string, string]);
    return text('unknown-keys', withMembers({ ...base, $version: version }, members), 'applied');
  }
  if (roll < 0.9) return text('bom', `\ufeff${JSON.stringify({ ...base, $version: version })}`, 'either');
  const launch = hostileLaunch(rng);
  const body = withMembers({ ...base, $version: version, pipelines: { fz: { pipeline: launch, on_eos: 'stop' } } }, []);
  return { ...text('hostile-launch', body, 'either'), describe: `pipelines.fz = ${show(launch, 200)}` };
}

/**
 * The twin surface (file mode): random shapes, wrong types for every key, unset variables, huge strings and
 * documents over 1 MiB, deep nesting, non-UTF-8 bytes, `$version` games, thousands of unknown keys, and launch
 * lines GStreamer's parser has to survive (as an extra pipeline, so the main one is never swapped). Each document
 * is written atomically and must end in `config-applied` or `config-rejected` (the one the README says), with a
 * reason that is the validator's, not a runtime error's.
 */
export function twinSurface(): FuzzSurface {
  let written = '';
  return {
    name: 'twin',
    concurrency: 1,
    async run(rng, index, target): Promise<FuzzOutcome> {
      const { module } = target;
      const document = build(rng, target.desired, index);
      // The watcher skips a file whose text did not change: make each one differ (trailing white space is JSON's).
      let bytes = document.bytes;
      if (bytes.toString('latin1') === written) bytes = Buffer.concat([bytes, Buffer.from(' ')]);
      written = bytes.toString('latin1');
      const from = module.logs.length;
      const temp = join(module.dir, '.fuzz-twin.tmp');
      writeFileSync(temp, bytes);
      renameSync(temp, module.twinPath);
      let verdict;
      try {
        verdict = await module.waitForLog((l) => l.event === 'config-applied' || l.event === 'config-rejected', 20_000, from);
      } catch {
        return { cls: 'no-verdict', problem: `no config-applied or config-rejected within 20 s for ${document.kind}: ${document.describe}` };
      }
      const got = verdict.event === 'config-applied' ? 'applied' : 'rejected';
      const reason = String(verdict.msg).replace(/^desired config rejected, keeping what runs: /, '');
      const also = got === 'rejected' && reason.length > 4_096 ? ['long-reason'] : [];
      if (document.expect !== 'either' && got !== document.expect) {
        return { cls: `${document.kind}-${got}`, problem: `${document.kind} was ${got}, not ${document.expect}${got === 'rejected' ? ` (${show(reason, 200)})` : ''}: ${document.describe}`, also };
      }
      if (got === 'rejected' && (reason.trim() === '' || INTERNAL_ERROR.test(reason))) {
        return { cls: `${document.kind}-unclear`, problem: `${document.kind} rejected with a reason that is a runtime error, not the validator's: ${show(reason, 300)} (${document.describe})`, also };
      }
      const leaks = target.leaks(JSON.stringify(verdict));
      if (leaks.length > 0) return { cls: 'leak', problem: `the verdict holds the secret: ${show(JSON.stringify(verdict), 300)}` };
      return { cls: `${document.kind}-${got}`, also };
    },
    async finish(target) {
      // The last good config again: applied, and (checked by the stay-up check) the main pipeline never swapped.
      const { module } = target;
      const from = module.logs.length;
      const temp = join(module.dir, '.fuzz-twin.tmp');
      writeFileSync(temp, JSON.stringify({ properties: { desired: target.desired } }));
      renameSync(temp, module.twinPath);
      written = '';
      try {
        await module.waitForLog((l) => l.event === 'config-applied', 20_000, from);
        return null;
      } catch {
        return 'the starting config written again was not applied within 20 s';
      }
    },
  };
}
