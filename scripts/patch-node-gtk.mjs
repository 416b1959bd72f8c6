#!/usr/bin/env node
/**
 * Patches node-gtk's source in node_modules and rebuilds its add-on, once: `node scripts/patch-node-gtk.mjs`.
 * Run by scripts/setup.sh and the Dockerfiles after `npm ci`. Idempotent: a tree already patched and built is left
 * alone (exit 0 at once).
 *
 * The patch (node-gtk 4.1.1, src/callback.cc): a GI callback (a bus watch, a GstPromise change function, a
 * GstRTSPSessionPool filter, GLib.timeoutAdd, Gst.Structure.foreach) ran in a new V8 context on every call
 * (`Context::New`): 480 us and a few hundred kB of fresh heap per call (measured: 4.4 us with the patch), which a
 * hundred WebRTC viewers' stats and bus messages turned into a sixth of a core and a JS heap that grew until the
 * next full GC. Patched, the callback runs in the context its function was created in (the one context the module
 * has), falling back to a new one if V8 has none. Upstream: romgrk/node-gtk; drop this once a release does the same.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodeGtk = join(root, 'node_modules', 'node-gtk');
const source = join(nodeGtk, 'src', 'callback.cc');
const MARKER = 'gst-iotedge patch';
const ORIGINAL = '    Local<Context> context = Context::New(isolate);\n';
const PATCHED =
  `    /* ${MARKER}: run in the function's own context. A new context per call (Context::New) cost about\n` +
  '     * 0.5 ms and a few hundred kB of fresh heap: bus watches, promises and filters called a hundred times\n' +
  '     * a second took a sixth of a core. See scripts/patch-node-gtk.mjs. */\n' +
  '    Local<Context> context;\n' +
  '    if (!Nan::New<Function>(callback->persistent)->GetCreationContext().ToLocal(&context))\n' +
  '        context = Context::New(isolate);\n';

const say = (msg) => process.stderr.write(`[patch-node-gtk] ${msg}\n`);

/** The built add-on's modification time, or 0 when there is none. */
function builtAt() {
  try {
    const bindings = join(nodeGtk, 'lib', 'binding');
    return Math.max(0, ...readdirSync(bindings).map((d) => statSync(join(bindings, d, 'node_gtk.node')).mtimeMs));
  } catch {
    return 0;
  }
}

let text;
try {
  text = readFileSync(source, 'utf8');
} catch {
  say(`no ${source}: run npm ci first`);
  process.exit(1);
}
const version = JSON.parse(readFileSync(join(nodeGtk, 'package.json'), 'utf8')).version;
if (!text.includes(MARKER)) {
  if (!text.includes(ORIGINAL)) {
    say(`node-gtk ${version}: src/callback.cc no longer has the line this patch replaces; check whether it is still needed`);
    process.exit(1);
  }
  writeFileSync(source, text.replace(ORIGINAL, PATCHED));
  say(`node-gtk ${version}: callbacks run in their function's context (src/callback.cc patched)`);
}
// Built after the patch was written: nothing to do.
if (builtAt() > statSync(source).mtimeMs) process.exit(0);
say('building node-gtk from source (about 70 s)');
// node-gyp must find Node's headers locally (no header download on an offline machine), as in setup.sh.
// npm_config_build_from_source: node-pre-gyp compiles instead of keeping the add-on it finds.
const env = { ...process.env, npm_config_build_from_source: 'true' };
const prefix = dirname(dirname(process.execPath));
if (!env.npm_config_nodedir) {
  try {
    statSync(join(prefix, 'include', 'node', 'node.h'));
    env.npm_config_nodedir = prefix;
  } catch {
    // node-gyp finds them another way (a Docker image's own node, for one).
  }
}
execFileSync('npm', ['rebuild', 'node-gtk'], { cwd: root, env, stdio: 'inherit' });
if (builtAt() <= statSync(source).mtimeMs) {
  say('the rebuild left no newer node_gtk.node');
  process.exit(1);
}
