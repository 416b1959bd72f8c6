import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseDesired } from '../../config/desired.js';
import { resolveDesired } from '../../config/resolve.js';
import { expandLaunch, MAX_BIN_DEPTH, quoteValue, shellQuotesToGst } from '../../config/launch.js';

/** Values that are syntax to gst-launch, one way or another. */
const HOSTILE = [
  'p w',
  'a"b',
  '"',
  '""',
  '"quoted"',
  'NULL',
  'a\\',
  '\\',
  'a\\"b',
  'x\\042y',
  "it's",
  "'",
  'a!b',
  ' ! fakesink name=evil ',
  'a,b=c',
  '$HOME ${X}',
  'héllo € 😀',
  'tab\there',
  'new\nline',
  '#hash',
  '=',
  '  lead',
  'trail  ',
];

const TEMPLATES = [
  'fakesrc ! filesink name=f location=$V async=false',
  "fakesrc ! filesink name=f location='$V' async=false",
  'fakesrc ! filesink name=f location="$V" async=false',
  'fakesrc ! filesink name=f location=pre-${V}-post async=false',
];

/**
 * Parses launch lines with GStreamer (gst_parse_launch, through node-gtk) in a child process, so this process never
 * loads node-gtk, and reads back filesink's `location` and `async`.
 */
async function parsedByGStreamer(launches: readonly string[]): Promise<Array<{ location: string | null; async: boolean } | { error: string }>> {
  const script = `
    import { createRequire } from 'node:module';
    const gi = createRequire(process.argv[2])('node-gtk');
    const Gst = gi.require('Gst', '1.0');
    Gst.init(null);
    const results = JSON.parse(process.argv[1]).map((launch) => {
      try {
        const f = Gst.parseLaunch(launch).getByName('f');
        return { location: f.location ?? null, async: f.async };
      } catch (error) {
        return { error: error.message };
      }
    });
    process.stdout.write(JSON.stringify(results));
  `;
  const packageJson = fileURLToPath(new URL('../../../package.json', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(launches), packageJson], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Array<{ location: string | null; async: boolean } | { error: string }>;
}

describe('launch lines as a shell would pass them', () => {
  it('turns single-quoted values into double-quoted ones, as the seed examples need', () => {
    assert.equal(shellQuotesToGst("rtspsrc location='rtsp://u:p@h/x' latency=200"), 'rtspsrc location="rtsp://u:p@h/x" latency=200');
    assert.equal(shellQuotesToGst(`a b="it's" c='say "hi"'`), `a b="it's" c="say \\"hi\\""`);
    assert.equal(shellQuotesToGst('plain ! text'), 'plain ! text');
  });

  it('keeps the seed templates working verbatim', () => {
    const env = { USER: 'admin', PASSWORD: 's3cr3t', IP: '10.0.0.5' };
    const seed = "( rtspsrc protocols=GST_RTSP_LOWER_TRANS_TCP location='rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp' latency=200 name=src src. ! queue ! rtph264depay ! rtph264pay name=pay0 pt=96 )";
    assert.equal(expandLaunch(seed, env, 'rtsp_pipeline').text, seed.replace("'rtsp://$USER:$PASSWORD@$IP/", 'rtsp://admin:s3cr3t@10.0.0.5/').replace("media.amp'", 'media.amp'));
    const unquoted = 'rtspsrc location=rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp ! fakesink location=${MEDIA_ROOT:-/tmp}/a.mp4';
    assert.equal(expandLaunch(unquoted, env, 'pipeline').text, 'rtspsrc location=rtsp://admin:s3cr3t@10.0.0.5/axis-media/media.amp ! fakesink location=/tmp/a.mp4');
    assert.equal(expandLaunch("a x='b c' ! d", env, 'p').text, 'a x="b c" ! d', 'words without variables read as before');
  });
});

describe('expanding into values', () => {
  it('quotes a value only when it is not plain', () => {
    assert.equal(quoteValue('rtsp://u:p@h:554/x'), 'rtsp://u:p@h:554/x');
    assert.equal(quoteValue('p w'), '"p w"');
    assert.equal(quoteValue('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(quoteValue('NULL'), '"\\"NULL\\""');
    assert.equal(quoteValue(''), '""');
  });

  it('never lets a value add elements or properties', () => {
    const { text } = expandLaunch('videotestsrc ! fakesink name=$NAME', { NAME: 'x sync=false ! identity' }, 'pipeline');
    assert.equal(text, 'videotestsrc ! fakesink name="x sync=false ! identity"');
  });

  it('refuses a value that would be syntax outside a property value, naming the variable only', () => {
    const env = { CAPS: '640,height=480', ELEMENT: 'x264enc', PASSWORD: 'p w' };
    assert.equal(expandLaunch('a ! $ELEMENT ! b', env, 'pipeline').text, 'a ! x264enc ! b');
    assert.throws(() => expandLaunch('a ! video/x-raw,width=$CAPS ! b', env, 'pipeline'), (e: unknown) => {
      const message = (e as Error).message;
      return /pipeline: \$\{CAPS\} is used outside a property value/.test(message) && !message.includes('640');
    });
    assert.throws(() => expandLaunch('rtsp://u:$PASSWORD@h/x ! b', env, 'pipeline'), /\$\{PASSWORD\} is used outside a property value/);
  });

  it('records the values that came from the environment, not the defaults', () => {
    const { values } = expandLaunch('a x=$A y=${B:-dflt} z=${C:-c}', { A: '1', C: '3' }, 'p');
    assert.deepEqual([...values], [['A', '1'], ['C', '3']]);
  });

  it('refuses a quote left open around a variable', () => {
    assert.throws(() => expandLaunch("a x='$A ! b", { A: '1' }, 'pipeline'), /pipeline: unterminated ' quote/);
  });

  it('gives GStreamer the literal characters of any value, in any quoting of the template', async () => {
    const cases = HOSTILE.flatMap((value) => TEMPLATES.map((template) => ({ value, template, launch: expandLaunch(template, { V: value }, 'p').text })));
    const parsed = await parsedByGStreamer(cases.map((c) => c.launch));
    cases.forEach(({ value, template, launch }, i) => {
      const expected = template.includes('pre-') ? `pre-${value}-post` : value;
      assert.deepEqual(parsed[i], { location: expected, async: false }, `${JSON.stringify(value)} in ${template} -> ${launch}`);
    });
  });

  it('resolves a document whose password holds quotes, spaces and ! into one property value', async () => {
    const password = `it's "quoted" ! fakesink \\`;
    const config = resolveDesired(parseDesired({ pipeline: "fakesrc ! filesink name=f location='/data/$PASSWORD/x.mp4' async=false" }), { PASSWORD: password });
    const [result] = await parsedByGStreamer([config.pipelines[0]!.launch]);
    assert.deepEqual(result, { location: `/data/${password}/x.mp4`, async: false });
    assert.deepEqual([...config.secrets], [['PASSWORD', password]]);
  });
});

describe('bounds on a launch line', () => {
  it(`refuses bins nested deeper than ${MAX_BIN_DEPTH} (the parser would take minutes), counting no parenthesis inside quotes`, () => {
    const nested = (depth: number) => `${'('.repeat(depth)}fakesrc ! fakesink${')'.repeat(depth)}`;
    assert.equal(expandLaunch(nested(MAX_BIN_DEPTH), {}, 'pipeline').text, nested(MAX_BIN_DEPTH));
    assert.throws(() => expandLaunch(nested(MAX_BIN_DEPTH + 1), {}, 'pipeline'), /pipeline: bins nested 65 deep; at most 64/);
    const quoted = `fakesrc ! fakesink name="${'('.repeat(500)}"`;
    assert.equal(expandLaunch(quoted, {}, 'pipeline').text, quoted);
  });
});
