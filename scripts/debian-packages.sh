#!/usr/bin/env bash
# Prints the Debian packages of scripts/debian-packages.txt for one use:
#   runtime  packages without a tag (the final container image)
#   build    runtime + build (compiling node-gtk: setup for `npm start`, the Dockerfiles' build stage)
#   all      everything, test tools included (`npm test`)
set -euo pipefail
use=${1:-all}
list="$(dirname "$0")/debian-packages.txt"
awk -v use="$use" '
  /^[[:space:]]*(#|$)/ { next }
  { tag = $2 }
  use == "runtime" && tag != "" { next }
  use == "build" && tag == "test" { next }
  { print $1 }
' "$list"
