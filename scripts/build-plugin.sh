#!/usr/bin/env bash
# Builds the module's GStreamer plugin (plugins/inference: the seed's pass-through `inference` element) into
# dist/gst-plugins/, the folder the media engine puts on GST_PLUGIN_PATH. Needs libgstreamer1.0-dev, pkg-config and
# a C compiler (`build` packages in scripts/debian-packages.txt). Skipped when the source, the GStreamer headers'
# version, the compiler and the machine are those of the last successful build (stamp in .cache/setup/plugin).
# `gst-launch-1.0` finds it the same way: GST_PLUGIN_PATH=$PWD/dist/gst-plugins gst-launch-1.0 ... ! inference ! ...
set -euo pipefail
cd "$(dirname "$0")/.."
src=plugins/inference/gstinference.c
out=dist/gst-plugins/libgstiotedgeinference.so
stamp=.cache/setup/plugin
cc=${CC:-cc}
key="$(sha1sum "$src" scripts/build-plugin.sh | sha1sum | cut -d' ' -f1)-$(pkg-config --modversion gstreamer-base-1.0)-$("$cc" -dumpfullversion -dumpversion | head -1)-$(uname -m)"
if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then exit 0; fi
printf '[setup] %s\n' "building the GStreamer plugin $out" >&2
mkdir -p "$(dirname "$out")" "$(dirname "$stamp")"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
"$cc" -shared -fPIC -O2 -Wall -Werror -o "$out.tmp" "$src" $(pkg-config --cflags --libs gstreamer-base-1.0)
mv "$out.tmp" "$out"
printf '%s' "$key" > "$stamp"
