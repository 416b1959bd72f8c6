#!/usr/bin/env bash
# Installs whatever is missing for running (and, with --test, testing) the module on a bare Debian 12 machine:
# Debian packages from scripts/debian-packages.txt, npm packages (node-gtk builds from source), node-gtk's
# TypeScript declarations, and the TypeScript build. Each step is skipped when its inputs have not changed
# since it last succeeded (a stamp: the hash of those inputs, in .cache/setup/), so `npm start` and `npm test`
# on a set-up machine start at once.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
say() { printf '[setup] %s\n' "$*" >&2; }
stamps=.cache/setup
# `fresh <step> <key>`: the step last succeeded with these inputs; `done_with <step> <key>` records that it did.
fresh() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$2" ]; }
done_with() { mkdir -p "$stamps" && printf '%s' "$2" > "$stamps/$1"; }

# 1. Debian packages. Tags after '#': 'build' (needed to build node-gtk), 'test' (only for the test suite).
# The key is the package selection and dpkg's database: any install or removal since then checks again.
use=$([ $want_test = 1 ] && echo all || echo build)
packages=$(bash scripts/debian-packages.sh "$use")
debian_key="$(printf '%s\n' "$packages" | sha1sum | cut -d' ' -f1)-$(stat -c %Y /var/lib/dpkg/status 2>/dev/null || echo none)"
missing=()
if ! fresh "debian-$use" "$debian_key"; then
  for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { say "not root and no sudo: install these packages first: ${missing[*]}"; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  debian_key="$(printf '%s\n' "$packages" | sha1sum | cut -d' ' -f1)-$(stat -c %Y /var/lib/dpkg/status 2>/dev/null || echo none)"
fi
done_with "debian-$use" "$debian_key"

# 2. npm packages. node-gyp must find Node's headers locally (no header download on an offline machine).
node_prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
# The key is what `npm ci` reads: the lock file and package.json without its scripts and descriptions (a new npm
# script must not reinstall 760 packages), and Node's version (node-gtk is a native add-on).
stamp=node_modules/.setup-stamp
npm_key="$(node -e '
  const p = require("./package.json");
  const keep = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies", "overrides", "allowScripts", "engines"];
  process.stdout.write(JSON.stringify(keep.map((k) => p[k] ?? null)) + process.version);
' | cat - package-lock.json | sha1sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$npm_key" ] \
   || [ ! -f node_modules/node-gtk/package.json ] || ! ls node_modules/node-gtk/lib/binding/*/node_gtk.node >/dev/null 2>&1; then
  say "installing npm packages (node-gtk compiles from source the first time: about 90 s)"
  # onnxruntime-node's install script would download a CUDA add-on (offline: it fails); its CPU binaries ship inside.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
  # npm 10 and older ignore allowScripts; npm 11 runs node-gtk's build only when allowed (package.json).
  ls node_modules/node-gtk/lib/binding/*/node_gtk.node >/dev/null 2>&1 || npm rebuild node-gtk
  printf '%s' "$npm_key" > "$stamp"
fi
# node-gtk patched (a GI callback made a new V8 context per call: 0.5 ms each) and rebuilt; a no-op once done.
node scripts/patch-node-gtk.mjs

# 3. node-gtk's generated TypeScript declarations for the GObject namespaces the media engine uses.
types=node_modules/.node-gtk-types
if [ ! -f "$types/GstRtspServer-1.0.d.ts" ] || [ ! -f "$types/GstWebRTC-1.0.d.ts" ]; then
  say "generating node-gtk type declarations"
  npm run --silent gi-types >/dev/null
fi

# 4. TypeScript build (incremental), skipped when no source, JSON file or compiler setting changed since the
# last successful build. The key hashes every .ts and .json file outside node_modules, dist and .git, but twins/
# (read at run time, not compiled) and reported-property files: the module writes twins/default.reported.json as it
# runs, and counting it made every `npm start` after a run type-check again (3 s).
build_key=$(find . \( -path ./node_modules -o -path ./dist -o -path ./.git -o -path ./.cache -o -path ./twins \) -prune -o \
  -type f \( -name '*.ts' -o -name '*.json' \) ! -name '*.reported.json' -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -d' ' -f1)
if [ ! -f dist/main.js ] || [ ! -f dist/media/main.js ] || ! fresh build "$build_key"; then
  npx --no-install tsc -p tsconfig.json
  done_with build "$build_key"
fi

# 5. Video analysis: the `inference` GStreamer plugin and the detector model (each skipped when up to date).
bash scripts/build-analysis.sh

# 6. Test-only: nothing beyond Debian packages yet (chromium is Debian's, driven by playwright-core).
exit 0
