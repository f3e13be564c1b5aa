#!/usr/bin/env bash
# End-to-end tests of the web UI: the release server binary (built before by
# `cargo build --release`, or HEARTH_BIN) driven through Debian's Chromium
# with playwright-core. A missing browser is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export HEARTH_BIN="${HEARTH_BIN:-$ROOT/target/release/hearth}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  echo "e2e: installing Debian's chromium"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 $SUDO apt-get update -qq
  timeout 1200 $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "e2e: FAILED: $CHROMIUM is missing after installing chromium" >&2
  exit 1
fi
if [ ! -x "$HEARTH_BIN" ]; then
  echo "e2e: FAILED: no server binary at $HEARTH_BIN (run cargo build --release first)" >&2
  exit 1
fi
"$CHROMIUM" --version || { echo "e2e: FAILED: $CHROMIUM does not run" >&2; exit 1; }

cd tests/e2e
timeout 600 npm ci --no-audit --no-fund --loglevel=error
timeout 1200 node --test --test-concurrency=1 --test-timeout=300000 ./*.test.mjs
