#!/usr/bin/env bash
# Autobahn|Testsuite (fuzzingclient mode) against hearth's echo example.
#
#   bash .ci/autobahn.sh                      # install (once), run, check against .ci/autobahn/expected.json
#   bash .ci/autobahn.sh --write-expected --markdown docs/autobahn.md   # regenerate both from this run
#
# Any arguments are passed on to .ci/autobahn-check.py. See docs/autobahn.md.
#
# Environment (all optional):
#   ECHO_BIN             echo server binary           (target/release/examples/echo)
#   AUTOBAHN_TLS         1: wss:// through our TLS     (1); 0: ws:// with --no-tls
#   AUTOBAHN_WS_PATH     request path of the WebSocket (/ws, as in hearth)
#   AUTOBAHN_HOME        install dir                   ($HOME/.cache/hearth-autobahn)
#   AUTOBAHN_SPEC        spec template                 (.ci/autobahn/fuzzingclient.json)
#   AUTOBAHN_PYTHON      CPython 2.7 interpreter       ($PYENV_ROOT/versions/2.7.18/bin/python2.7)
#   AUTOBAHN_REPORT_DIR  report output dir, wiped      (target/autobahn-report)
#   AUTOBAHN_TIMEOUT     limit for the suite run, s    (1200)
#   PYTHON3              Python 3 for the helpers      (python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

die() { echo "autobahn: ERROR: $*" >&2; exit 1; }
log() { echo "autobahn: $*"; }

ECHO_BIN=${ECHO_BIN:-target/release/examples/echo}
AUTOBAHN_TLS=${AUTOBAHN_TLS:-1}
AUTOBAHN_WS_PATH=${AUTOBAHN_WS_PATH:-/ws}
AUTOBAHN_HOME=${AUTOBAHN_HOME:-${HOME:-/root}/.cache/hearth-autobahn}
PY2=${AUTOBAHN_PYTHON:-${PYENV_ROOT:-${HOME:-/root}/.pyenv}/versions/2.7.18/bin/python2.7}
REPORT=${AUTOBAHN_REPORT_DIR:-target/autobahn-report}
SUITE_TIMEOUT=${AUTOBAHN_TIMEOUT:-1200}
PY3=${PYTHON3:-python3}
REQ=.ci/autobahn-requirements.txt
SPEC_TEMPLATE=${AUTOBAHN_SPEC:-.ci/autobahn/fuzzingclient.json}
SITE=$AUTOBAHN_HOME/site

# ---------------------------------------------------------------- preflight
[[ -x $PY2 ]] || die "CPython 2.7 not found at '$PY2'. autobahntestsuite 0.8.2 is Python 2 only;
  install it with 'pyenv install 2.7.18' or point AUTOBAHN_PYTHON at a python2.7. Not skipping."
"$PY2" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' \
  || die "'$PY2' is not Python 2.7"
command -v "$PY3" >/dev/null || die "python3 ('$PY3') not found; needed for the port picker and the checker"
[[ -x $ECHO_BIN ]] || die "echo server '$ECHO_BIN' not found or not executable (cargo build --release --example echo)"
command -v timeout >/dev/null || die "coreutils 'timeout' not found"

# ---------------------------------------------------------------- install
# Pinned closure into a --target dir; a stamp (hash of the pins + interpreter)
# makes this a no-op when already done. Built in SITE.new, then renamed, so an
# interrupted install never leaves a half-populated SITE behind.
stamp=$( { cat "$REQ"; "$PY2" -c 'import sys; print(sys.version)'; echo "$PY2"; } | sha256sum | cut -d' ' -f1)
if [[ -f $SITE/.hearth-stamp && $(cat "$SITE/.hearth-stamp") == "$stamp" ]]; then
  log "autobahntestsuite already installed in $SITE"
else
  "$PY2" -m pip --version >/dev/null 2>&1 || die "pip is missing for '$PY2'"
  log "installing autobahntestsuite into $SITE (pinned in $REQ) ..."
  t0=$SECONDS
  mkdir -p "$AUTOBAHN_HOME"
  rm -rf "$SITE.new"
  if ! timeout 900 "$PY2" -m pip install --disable-pip-version-check --no-warn-script-location \
        --no-deps --target "$SITE.new" -r "$REQ" >"$AUTOBAHN_HOME/install.log" 2>&1; then
    tail -n 40 "$AUTOBAHN_HOME/install.log" >&2
    die "pip install failed (full log: $AUTOBAHN_HOME/install.log)"
  fi
  echo "$stamp" >"$SITE.new/.hearth-stamp"
  rm -rf "$SITE"
  mv "$SITE.new" "$SITE"
  log "installed in $((SECONDS - t0))s"
fi

# wstest runs isolated from the interpreter's own site-packages (-E -s -S);
# site.addsitedir also processes the .pth files (zope namespace package).
WSTEST_PY='import site, sys
site.addsitedir(sys.argv.pop(1))
sys.argv[0] = "wstest"
from autobahntestsuite.wstest import run
run()'
versions=$(timeout 60 "$PY2" -E -s -S -W ignore -c "$WSTEST_PY" "$SITE" --autobahnversion 2>&1) \
  || { echo "$versions" >&2; die "wstest does not start (delete $SITE to force a reinstall)"; }
versions=$(echo "$versions" | tr -s '\n' ' ')
log "$versions"

# ---------------------------------------------------------------- echo server
# Wipe the previous report, but only if it looks like one of ours.
if [[ -d $REPORT && -n $(ls -A "$REPORT") && ! -f $REPORT/spec.json ]]; then
  die "refusing to wipe '$REPORT': not empty and not an autobahn report dir"
fi
rm -rf "$REPORT"
mkdir -p "$REPORT"
REPORT=$(cd "$REPORT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hearth-autobahn.XXXXXX")
ECHO_PID=

stop_echo() {
  [[ -n $ECHO_PID ]] || return 0
  if kill -0 "$ECHO_PID" 2>/dev/null; then
    kill -TERM "$ECHO_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$ECHO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ECHO_PID" 2>/dev/null || true
  fi
  wait "$ECHO_PID" 2>/dev/null || true
  ECHO_PID=
}
cleanup() { stop_echo; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

show_echo_logs() {
  echo "--- echo stdout (tail) ---" >&2; tail -n 20 "$REPORT/echo.stdout" >&2 || true
  echo "--- echo stderr (tail) ---" >&2; tail -n 40 "$REPORT/echo.stderr" >&2 || true
}

TLS_ARGS=()
[[ $AUTOBAHN_TLS == 0 ]] && TLS_ARGS=(--no-tls)

LISTEN=
for attempt in 1 2 3; do
  PORT=$("$PY3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  rm -rf "$WORK/data"; mkdir -p "$WORK/data"
  "$ECHO_BIN" --listen "127.0.0.1:$PORT" ${TLS_ARGS[@]+"${TLS_ARGS[@]}"} --data "$WORK/data" \
    >"$REPORT/echo.stdout" 2>"$REPORT/echo.stderr" </dev/null &
  ECHO_PID=$!
  for _ in $(seq 300); do   # up to 30 s (first start may generate a CA)
    LISTEN=$(grep -m1 -oE 'listening on https?://[^[:space:]]+' "$REPORT/echo.stdout" || true)
    [[ -n $LISTEN ]] && break
    kill -0 "$ECHO_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $LISTEN ]] && break
  log "echo server did not come up on port $PORT (attempt $attempt)"
  show_echo_logs
  stop_echo
done
[[ -n $LISTEN ]] || die "echo server '$ECHO_BIN' never printed 'listening on ...'"

case $LISTEN in
  *https://*) SCHEME=wss ;;
  *) SCHEME=ws ;;
esac
if [[ $AUTOBAHN_TLS != 0 && $SCHEME != wss ]]; then
  die "expected a TLS listener ('listening on https://...'), got '$LISTEN'"
fi
CA=$(grep -m1 -oE '^ca [^[:space:]]+' "$REPORT/echo.stdout" | cut -d' ' -f2 || true)
URL="$SCHEME://127.0.0.1:$PORT$AUTOBAHN_WS_PATH"
log "echo server pid $ECHO_PID: $LISTEN${CA:+ (ca $CA)}; suite url $URL"

# ---------------------------------------------------------------- suite
"$PY3" - "$SPEC_TEMPLATE" "$WORK/spec.json" "$URL" "$REPORT" <<'EOF'
import json, sys
template, out, url, outdir = sys.argv[1:5]
spec = json.load(open(template))
spec.pop("_comment", None)
spec["outdir"] = outdir
spec["servers"][0]["url"] = url
json.dump(spec, open(out, "w"), indent=2)
EOF
cp "$WORK/spec.json" "$REPORT/spec.json"

log "running fuzzingclient (log: $REPORT/wstest.log, limit ${SUITE_TIMEOUT}s) ..."
t0=$SECONDS
rc=0
(cd "$WORK" && timeout --kill-after=10 "$SUITE_TIMEOUT" \
   "$PY2" -E -s -S -W ignore -c "$WSTEST_PY" "$SITE" --mode fuzzingclient --spec "$WORK/spec.json") \
   >"$REPORT/wstest.log" 2>&1 </dev/null || rc=$?
RUN_SECONDS=$((SECONDS - t0))

alive=1
kill -0 "$ECHO_PID" 2>/dev/null || alive=0
stop_echo

if [[ $rc != 0 || ! -f $REPORT/index.json ]]; then
  tail -n 30 "$REPORT/wstest.log" >&2
  show_echo_logs
  [[ $rc == 124 ]] && die "fuzzingclient timed out after ${SUITE_TIMEOUT}s"
  die "fuzzingclient failed (exit $rc) or wrote no $REPORT/index.json"
fi
log "fuzzingclient finished in ${RUN_SECONDS}s"
if [[ $alive == 0 ]]; then
  show_echo_logs
  die "the echo server died during the run"
fi

"$PY3" - "$REPORT/run.json" "$URL" "$SCHEME" "$ECHO_BIN" "$RUN_SECONDS" "$versions" <<'EOF'
import json, sys
out, url, scheme, echo_bin, secs, versions = sys.argv[1:7]
json.dump({"url": url, "transport": scheme, "echo_bin": echo_bin,
           "run_seconds": int(secs), "versions": versions.strip()}, open(out, "w"), indent=2)
EOF

# Not exec: the EXIT trap must still clean up $WORK. The checker's status is ours.
"$PY3" .ci/autobahn-check.py "$REPORT/index.json" "$@"
