#!/usr/bin/env bash
# Builds what video analysis needs beside the TypeScript (run after tsc, by scripts/setup.sh and the Dockerfiles):
# 1. the module's GStreamer plugin (plugins/inference: the seed's pass-through `inference` element) into
#    dist/gst-plugins/, the folder the media engine puts on GST_PLUGIN_PATH. Needs libgstreamer1.0-dev, pkg-config
#    and a C compiler (`build` packages in scripts/debian-packages.txt). gst-launch-1.0 finds it the same way:
#      GST_PLUGIN_PATH=$PWD/dist/gst-plugins gst-launch-1.0 ... ! rtph264depay ! inference ! h264parse ! ...
# 2. dist/models/: the CenterNet detector converted to ONNX from the installed @vladmandic/human (no download) and
#    a copy of its tfjs graph, so the final image needs neither that package nor the converter.
# Each is skipped when its inputs are those of its last successful build (stamps in .cache/setup/).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[setup] %s\n' "$*" >&2; }
stamps=.cache/setup
mkdir -p "$stamps"

src="plugins/inference/gstinference.c plugins/inference/gstasyncstate.c plugins/inference/gsthub.c plugins/inference/gstgate.c"
out=dist/gst-plugins/libgstiotedgeinference.so
cc=${CC:-cc}
key="$(cat $src plugins/inference/*.h | sha1sum | cut -d' ' -f1)-$(pkg-config --modversion gstreamer-base-1.0)-$("$cc" -dumpfullversion -dumpversion | head -1)-$(uname -m)"
if [ ! -f "$out" ] || [ "$(cat "$stamps/plugin" 2>/dev/null)" != "$key" ]; then
  say "building the GStreamer plugin $out"
  mkdir -p "$(dirname "$out")"
  # libgstapp by its run-time name: gsthub.c declares the two calls it makes (no -dev package needed).
  # shellcheck disable=SC2046 # pkg-config prints several words on purpose
  "$cc" -shared -fPIC -O2 -Wall -Werror -o "$out.tmp" $src $(pkg-config --cflags --libs gstreamer-base-1.0) -l:libgstapp-1.0.so.0
  mv "$out.tmp" "$out"
  printf '%s' "$key" > "$stamps/plugin"
fi

# The converter skips by itself when dist/models/centernet.onnx.key matches its inputs.
node dist/analysis/centernet/toOnnx.js dist/models/centernet.onnx
