#!/bin/sh
# Runs hearth with every fsync and fdatasync FSYNC_DELAY_MS slower (default
# 20 ms, an SD card), by strace's fault injection; only those calls stop in
# strace (--seccomp-bpf), so the rest runs at full speed. For hearth-bench:
#   FSYNC_DELAY_MS=20 hearth-bench fanout --server bench/slow-disk.sh
# The bench's CPU and RSS columns then measure this script, not hearth.
: "${FSYNC_DELAY_MS:=20}"
hearth="${HEARTH:-$(dirname "$0")/../target/release/hearth}"
strace -f --seccomp-bpf -qq -o "${STRACE_LOG:-/dev/null}" -tt -y -e trace=fsync,fdatasync \
  -e inject=fsync,fdatasync:delay_exit=$((FSYNC_DELAY_MS * 1000)) "$hearth" "$@" &
pid=$!
# Stopping this script stops hearth (gracefully), not just strace.
trap 'pkill -TERM -P $pid; wait $pid' TERM INT
wait $pid
