#!/usr/bin/env bash
# Installs whatever is missing for running (and, with --test, testing) the module on a bare Debian 12 machine:
# Debian packages from scripts/debian-packages.txt, npm packages (node-gtk builds from source), node-gtk's
# TypeScript declarations, and the TypeScript build. Each step is skipped when it is already done, so
# `npm start` and `npm test` stay quick after the first run.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
say() { printf '[setup] %s\n' "$*" >&2; }

# 1. Debian packages. Tags after '#': 'build' (needed to build node-gtk), 'test' (only for the test suite).
packages=$(bash scripts/debian-packages.sh "$([ $want_test = 1 ] && echo all || echo build)")
missing=()
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
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
fi

# 2. npm packages. node-gyp must find Node's headers locally (no header download on an offline machine).
node_prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
stamp=node_modules/.setup-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ] \
   || [ ! -f node_modules/node-gtk/package.json ] || ! ls node_modules/node-gtk/lib/binding/*/node_gtk.node >/dev/null 2>&1; then
  say "installing npm packages (node-gtk compiles from source the first time: about 90 s)"
  # onnxruntime-node's install script would download a CUDA add-on (offline: it fails); its CPU binaries ship inside.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
  # npm 10 and older ignore allowScripts; npm 11 runs node-gtk's build only when allowed (package.json).
  ls node_modules/node-gtk/lib/binding/*/node_gtk.node >/dev/null 2>&1 || npm rebuild node-gtk
  touch "$stamp"
fi

# 3. node-gtk's generated TypeScript declarations for the GObject namespaces the media engine uses.
types=node_modules/.node-gtk-types
if [ ! -f "$types/GstRtspServer-1.0.d.ts" ] || [ ! -f "$types/GstWebRTC-1.0.d.ts" ]; then
  say "generating node-gtk type declarations"
  npm run --silent gi-types >/dev/null
fi

# 4. TypeScript build (incremental).
npx --no-install tsc -p tsconfig.json

# 5. Video analysis: the `inference` GStreamer plugin and the detector model (each skipped when up to date).
bash scripts/build-analysis.sh

# 6. Test-only: nothing beyond Debian packages yet (chromium is Debian's, driven by playwright-core).
exit 0
