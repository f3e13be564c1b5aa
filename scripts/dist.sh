#!/usr/bin/env bash
# Static release binaries of hearth for the boards people own, each packed
# with the README, the Raspberry Pi guide and a systemd unit, plus SHA256SUMS;
# then a smoke test of every binary (ARM ones under qemu-user, on the CPU of
# the oldest Pi for that target): GET /healthz over TLS, sign up, send a
# message over WebSocket, stop it with SIGTERM and expect exit status 0.
#
#   bash scripts/dist.sh                 # install tools (apt, rustup, zig), build, pack, smoke
#   SKIP_INSTALL=1 bash scripts/dist.sh  # tools already there
#   ARMV6=1 bash scripts/dist.sh         # also Pi 1 / Zero (armv6, zig + build-std; slower)
#
# Targets (see shared/arm-build.md for why each is built this way):
#   x86_64-unknown-linux-musl       PCs and servers          musl-gcc
#   aarch64-unknown-linux-musl      Pi 3/4/5/Zero 2, 64-bit  Debian cross gcc + musl-dev:arm64
#   armv7-unknown-linux-musleabihf  Pi 2/3/4, 32-bit Pi OS   zig + -Zbuild-std (no rust-std download here)
#   arm-unknown-linux-musleabihf    Pi 1 / Zero (ARMV6=1)    zig + -Zbuild-std
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ARMV6=${ARMV6:-0}
TOOLS=${TOOLS:-/opt/hearth-xbuild}
OUT=${OUT:-dist}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
log() { echo "dist: $*"; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  dpkg --add-architecture arm64
  # A foreign-architecture index can fail transiently during a mirror sync;
  # the installs below still work (and fail loudly if they do not).
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends file qemu-user-static musl-tools \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross musl-dev:arm64 >/dev/null
  rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null
  rustup component add rust-src >/dev/null
  [ -x "$TOOLS/zig/bin/pip" ] || python3 -m venv "$TOOLS/zig"
  "$TOOLS/zig/bin/pip" install -q ziglang
  [ -x "$TOOLS/bin/cargo-zigbuild" ] || cargo install -q --locked --root "$TOOLS" cargo-zigbuild
fi
export PATH="$TOOLS/zig/bin:$TOOLS/bin:$PATH"
# C compilers must use musl headers (glibc headers give undefined open64... at link time).
export CC_x86_64_unknown_linux_musl=musl-gcc
export CC_aarch64_unknown_linux_musl=aarch64-linux-musl-gcc AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no"
export CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no"

# triple|qemu|cpu of the oldest Pi for that triple (qemu's default cpu would hide ISA errors)
TARGETS="x86_64-unknown-linux-musl|| aarch64-unknown-linux-musl|qemu-aarch64-static|cortex-a53"
TARGETS="$TARGETS armv7-unknown-linux-musleabihf|qemu-arm-static|cortex-a7"
[ "$ARMV6" = 1 ] && TARGETS="$TARGETS arm-unknown-linux-musleabihf|qemu-arm-static|arm1176"

log "building the smoke-test client (native)"
cargo build -q --release --locked -p hearth-bench
SMOKE=target/release/hearth-bench

rm -rf "$OUT"; mkdir -p "$OUT"
fail=0
for spec in $TARGETS; do
  IFS='|' read -r T QEMU CPU <<<"$spec"
  t0=$(date +%s)
  case "$T" in
    armv7-unknown-linux-musleabihf|arm-unknown-linux-musleabihf)
      RUSTC_BOOTSTRAP=1 cargo zigbuild -q --release --locked -p hearth --target "$T" -Zbuild-std=std,panic_abort ;;
    *) cargo build -q --release --locked -p hearth --target "$T" ;;
  esac
  B="target/$T/release/hearth"
  size=$(stat -c %s "$B")
  log "$T: built in $(( $(date +%s) - t0 )) s, $size bytes"
  if ! file "$B" | grep -Eq 'statically linked|static-pie linked'; then
    log "$T: NOT STATICALLY LINKED: $(file "$B")"; fail=1; continue
  fi

  # Smoke test: a real server from this binary, a real client against it.
  work=$(mktemp -d)
  run=("$B"); [ -n "$QEMU" ] && run=("$QEMU" -cpu "$CPU" "$B")
  "${run[@]}" --listen 127.0.0.1:0 --data "$work/data" --certs "$work/certs" >"$work/out" 2>"$work/err" &
  pid=$!
  addr=""
  for _ in $(seq 1 300); do
    addr=$(sed -n 's/^Listening on //p' "$work/out" | head -n1)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ok=0
  if [ -n "$addr" ] && timeout 180 "$SMOKE" smoke --addr "$addr" --ca "$work/certs/ca.pem"; then
    kill -TERM "$pid"
    status=""
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$T: did not stop within 10 s of SIGTERM"; kill -9 "$pid"
    else wait "$pid" && status=0 || status=$?; fi
    [ "$status" = 0 ] && ok=1 || log "$T: exit status after SIGTERM: ${status:-killed}"
  else
    kill -9 "$pid" 2>/dev/null || true
    log "$T: no banner or smoke failed; server stderr:"; cat "$work/err" >&2
  fi
  rm -rf "$work"
  if [ "$ok" != 1 ]; then log "$T: SMOKE FAILED"; fail=1; continue; fi
  log "$T: smoke OK${QEMU:+ (under $QEMU -cpu $CPU)}"

  pkg="hearth-$VERSION-$T"
  mkdir -p "$OUT/$pkg"
  cp "$B" "$OUT/$pkg/hearth"
  cp README.md "$OUT/$pkg/"
  cp docs/raspberry-pi.md "$OUT/$pkg/RASPBERRY-PI.md"
  cp packaging/hearth.service "$OUT/$pkg/"
  tar -C "$OUT" -czf "$OUT/$pkg.tar.gz" "$pkg"
  rm -rf "${OUT:?}/$pkg"
done
(cd "$OUT" && sha256sum -- *.tar.gz > SHA256SUMS)
ls -l "$OUT"
cat "$OUT/SHA256SUMS"
if [ "$fail" != 0 ]; then log "FAILED"; exit 1; fi
log "all targets built, packed and smoke-tested"
