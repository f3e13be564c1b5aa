#!/usr/bin/env python3
"""Check an Autobahn|Testsuite (0.8.2, fuzzingclient) report for hearth.

    autobahn-check.py REPORT/index.json                 # compare + rules, exit 1 on any problem
    autobahn-check.py REPORT/index.json --write-expected   # regenerate .ci/autobahn/expected.json
    autobahn-check.py REPORT/index.json --markdown docs/autobahn.md

Two independent checks, both must hold:

1. Rules (policy, independent of any recorded run):
   * every case of groups 1-10 is OK, NON-STRICT or INFORMATIONAL, with a
     closing behaviour OK or INFORMATIONAL;
   * except the group-9 cases whose message is larger than hearth's 64 KiB
     message cap (OVERSIZE below): those must be refused with a clean close
     1009 (Message Too Big) initiated by the server, without echoing;
   * groups 12 and 13 (permessage-deflate, which hearth does not offer) are
     UNIMPLEMENTED (or passing, should deflate ever be added) and close OK;
   * all 301 cases of groups 1-10 ran.
2. Regression: the sorted `case -> behavior, behaviorClose` summary equals
   the committed .ci/autobahn/expected.json exactly; an entry there may list
   several accepted values for a case whose outcome depends on timing (record
   them with --merge-expected from several runs).

    autobahn-check.py REPORT/index.json --merge-expected   # widen expected.json by this run
"""
import argparse
import collections
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_EXPECTED = os.path.join(HERE, "autobahn", "expected.json")
SUITE = "autobahntestsuite 0.8.2"

CAP = 64 * 1024  # hearth's message cap, bytes; a message of exactly CAP bytes is allowed
CLOSE_TOO_BIG = 1009
PASSING = ("OK", "NON-STRICT", "INFORMATIONAL")
FIELDS = ("behavior", "behaviorClose")
CLOSE_PASSING = ("OK", "INFORMATIONAL")
CASES_1_TO_10 = 301  # number of cases in groups 1-10 in autobahntestsuite 0.8.2

GROUPS = {
    1: "Framing",
    2: "Pings/Pongs",
    3: "Reserved bits",
    4: "Opcodes",
    5: "Fragmentation",
    6: "UTF-8 handling",
    7: "Close handling",
    9: "Limits/performance",
    10: "Miscellaneous",
    12: "permessage-deflate (payloads)",
    13: "permessage-deflate (parameters)",
}

KiB, MiB = 1024, 1024 * 1024


def _size(n):
    return "%d MiB" % (n // MiB) if n >= MiB and n % MiB == 0 else "%d KiB" % (n // KiB) if n >= KiB else "%d B" % n


def _oversize_cases():
    """Group-9 case id -> human description of what the client sends.

    Sizes are taken from the case sources of 0.8.2 (some DESCRIPTION strings
    there are wrong, e.g. 9.2.5 says 16M but sends 8 MiB)."""
    out = {}
    for i, n in enumerate([256 * KiB, 1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB], start=2):
        out["9.1.%d" % i] = (n, "text message of %s in one frame" % _size(n))
        out["9.2.%d" % i] = (n, "binary message of %s in one frame" % _size(n))
    for i, f in enumerate([64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB], start=1):
        out["9.3.%d" % i] = (4 * MiB, "text message of 4 MiB in fragments of %s" % _size(f))
        out["9.4.%d" % i] = (4 * MiB, "binary message of 4 MiB in fragments of %s" % _size(f))
    for i, c in enumerate([64, 128, 256, 512, 1024, 2048], start=1):
        out["9.5.%d" % i] = (1 * MiB, "text message of 1 MiB in one frame, written in %d-byte TCP chunks" % c)
        out["9.6.%d" % i] = (1 * MiB, "binary message of 1 MiB in one frame, written in %d-byte TCP chunks" % c)
    assert all(n > CAP for n, _ in out.values())
    return out


OVERSIZE = _oversize_cases()


def case_key(cid):
    if cid == "*":  # report-wide problems sort last
        return (1 << 30,)
    return tuple(int(x) for x in cid.split("."))


def group(cid):
    return int(cid.split(".")[0])


class Report:
    def __init__(self, path, agent=None):
        if os.path.isdir(path):
            path = os.path.join(path, "index.json")
        self.dir = os.path.dirname(os.path.abspath(path))
        with open(path) as f:
            index = json.load(f)
        if not index:
            sys.exit("autobahn-check: %s has no agents" % path)
        if agent is None:
            if len(index) != 1:
                sys.exit("autobahn-check: several agents in %s (%s); pick one with --agent" % (path, ", ".join(sorted(index))))
            agent = next(iter(index))
        if agent not in index:
            sys.exit("autobahn-check: agent %r not in %s" % (agent, path))
        self.agent = agent
        self.cases = {cid: index[agent][cid] for cid in sorted(index[agent], key=case_key)}
        self._details = {}
        meta = os.path.join(self.dir, "run.json")
        self.meta = json.load(open(meta)) if os.path.exists(meta) else {}

    def summary(self):
        return {cid: {"behavior": c["behavior"], "behaviorClose": c["behaviorClose"]} for cid, c in self.cases.items()}

    def details(self, cid):
        """The per-case JSON report (description, closedByMe, wasClean, ...), or {}."""
        if cid not in self._details:
            d = {}
            rf = self.cases[cid].get("reportfile")
            if rf and os.path.exists(os.path.join(self.dir, rf)):
                with open(os.path.join(self.dir, rf)) as f:
                    d = json.load(f)
            self._details[cid] = d
        return self._details[cid]


def clean(text, limit=160):
    """One line of plain text from an Autobahn description (which holds HTML)."""
    text = re.sub(r"<br\s*/?>", " ", text or "")
    text = re.sub(r"<[^>]+>", "", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compress_ids(ids):
    """['6.22.1', '6.22.2', '6.22.3', '7.1.1'] -> '6.22.1-3, 7.1.1'."""
    out, run = [], []

    def flush():
        if run:
            parent, first, last = run[0][0], run[0][1], run[-1][1]
            pre = parent + "." if parent else ""
            out.append("%s%d" % (pre, first) if first == last else "%s%d-%d" % (pre, first, last))
        del run[:]

    for cid in sorted(ids, key=case_key):
        if cid == "*":
            flush()
            out.append("*")
            continue
        parent, _, last = cid.rpartition(".")
        if run and run[-1][0] == parent and run[-1][1] + 1 == int(last):
            run.append((parent, int(last)))
        else:
            flush()
            run.append((parent, int(last)))
    flush()
    return ", ".join(out)


def check_rules(rep):
    """Return a list of (case, kind, detail) for every policy violation; `kind`
    is a short signature shared by cases that fail the same way."""
    problems = []
    for cid, c in rep.cases.items():
        g = group(cid)
        beh, bclose, code = c["behavior"], c["behaviorClose"], c.get("remoteCloseCode")
        if cid in OVERSIZE:
            why = []
            if beh != "FAILED":
                why.append("behavior %s (the oversize message must not be echoed)" % beh)
            if code != CLOSE_TOO_BIG:
                why.append("server close code %s, want %d" % (code, CLOSE_TOO_BIG))
            if bclose != "FAILED":  # server-initiated close is reported as FAILED ("wrong endpoint")
                why.append("behaviorClose %s, want FAILED (= closed by the server)" % bclose)
            d = rep.details(cid)
            if d:
                if d.get("closedByMe") is not False:
                    why.append("close was not initiated by the server")
                if d.get("wasClean") is not True:
                    why.append("close was not clean (%s)" % (d.get("wasNotCleanReason") or "TCP dropped"))
            if why:
                problems.append((cid, "oversize message not refused with a clean 1009", "; ".join(why)))
            continue
        if g in (12, 13):
            ok = beh in PASSING + ("UNIMPLEMENTED",) and bclose in CLOSE_PASSING
            want = "want UNIMPLEMENTED (or passing) / OK"
        else:
            ok = beh in PASSING and bclose in CLOSE_PASSING
            want = "want OK, NON-STRICT or INFORMATIONAL / OK or INFORMATIONAL"
        if not ok:
            kind = "%s / %s, server close code %s (%s)" % (beh, bclose, code, want)
            d = rep.details(cid)
            detail = ""
            if d:
                detail = "%s | %s | %s%s" % (
                    clean(d.get("description")), clean(d.get("result")), clean(d.get("resultClose")),
                    " | %s" % clean(d.get("wasNotCleanReason")) if d.get("wasNotCleanReason") else "")
            problems.append((cid, kind, detail))
    n = sum(1 for cid in rep.cases if group(cid) <= 10)
    if n != CASES_1_TO_10:
        problems.append(("*", "%d cases of groups 1-10 in the report, want all %d" % (n, CASES_1_TO_10), ""))
    missing = sorted(set(OVERSIZE) - set(rep.cases), key=case_key)
    if missing:
        problems.append(("*", "%d oversize cases missing from the report: %s" % (len(missing), compress_ids(missing)), ""))
    return problems


def accepts(want, got):
    """An expected value is one string, or a list of accepted strings (a case
    whose outcome depends on timing, e.g. OK or NON-STRICT)."""
    return got in want if isinstance(want, list) else got == want


def entry_accepts(want, got):
    return want is not None and got is not None and all(accepts(want[k], got[k]) for k in FIELDS)


def fmt_entry(x):
    if x is None:
        return "(absent)"
    f = lambda v: "|".join(v) if isinstance(v, list) else v
    return "%s / %s" % (f(x["behavior"]), f(x["behaviorClose"]))


def compare(summary, expected):
    """Return a list of (case, 'expected X, got Y')."""
    diffs = []
    for cid in sorted(set(summary) | set(expected), key=case_key):
        got, want = summary.get(cid), expected.get(cid)
        if (got is None and want is None) or entry_accepts(want, got):
            continue
        diffs.append((cid, "expected %s, got %s" % (fmt_entry(want), fmt_entry(got))))
    return diffs


def merged_expected(summary, old, widen):
    """The new expected table: an old entry that already accepts this run is
    kept as it is (so recorded alternatives survive); with `widen`, the
    observed values are added to the old entry's accepted ones instead of
    replacing them."""
    out = collections.OrderedDict()
    for cid, got in summary.items():
        want = old.get(cid)
        if entry_accepts(want, got):
            out[cid] = want
        elif widen and want is not None:
            e = {}
            for k in FIELDS:
                vals = want[k] if isinstance(want[k], list) else [want[k]]
                vals = sorted(set(vals) | {got[k]})
                e[k] = vals[0] if len(vals) == 1 else vals
            out[cid] = e
        else:
            out[cid] = dict(got)
    return out


def grouped(items):
    """[(case, kind, ...)] -> OrderedDict kind -> [cases], in first-seen order."""
    out = collections.OrderedDict()
    for it in items:
        out.setdefault(it[1], []).append(it[0])
    return out


def load_expected(path):
    with open(path) as f:
        data = json.load(f)
    return data["cases"]


def write_expected(path, rep, table):
    lines = [
        "{",
        '  "_comment": "Expected Autobahn|Testsuite results for hearth\'s echo example: case -> behavior, behaviorClose. '
        'Generated by .ci/autobahn-check.py --write-expected (or --merge-expected, which turns a value into a list of '
        'accepted values for timing-dependent cases) from real runs of .ci/autobahn.sh; do not edit by hand.",',
        '  "suite": %s,' % json.dumps(SUITE),
        '  "agent": %s,' % json.dumps(rep.agent),
        '  "transport": %s,' % json.dumps(rep.meta.get("transport", "?")),
        '  "cases": {',
    ]
    items = list(table.items())
    for i, (cid, v) in enumerate(items):
        v = collections.OrderedDict((k, v[k]) for k in FIELDS)
        lines.append("    %s: %s%s" % (json.dumps(cid), json.dumps(v), "," if i + 1 < len(items) else ""))
    lines += ["  }", "}", ""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_markdown(path, rep, problems, expected):
    cases = rep.cases
    behaviors = [b for b in ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
                 if any(c["behavior"] == b for c in cases.values())]
    behaviors += sorted({c["behavior"] for c in cases.values()} - set(behaviors))
    per_group = collections.OrderedDict()
    for cid, c in cases.items():
        per_group.setdefault(group(cid), collections.Counter())[c["behavior"]] += 1
    meta = rep.meta
    transport = meta.get("transport", "?")
    n_over = sum(1 for cid in cases if cid in OVERSIZE)

    md = []
    md.append("# Autobahn|Testsuite")
    md.append("")
    md.append("hearth's WebSocket layer is run against the [Autobahn|Testsuite](https://github.com/crossbario/autobahn-testsuite) "
              "(PyPI `autobahntestsuite==0.8.2`, mode `fuzzingclient`) through the echo example "
              "(`cargo build --release --example echo`), over %s so that our real TLS + WebSocket path is exercised."
              % ("TLS (`wss://`)" if transport == "wss" else "`%s://`" % transport))
    md.append("")
    md.append("## Running it")
    md.append("")
    md.append("```sh")
    md.append("cargo build --release --example echo")
    md.append("bash .ci/autobahn.sh                 # install once, run, check; exit 1 on any difference")
    md.append("bash .ci/autobahn.sh --write-expected --markdown docs/autobahn.md   # after an intended change")
    md.append("bash .ci/autobahn.sh --merge-expected   # a case flips with timing: accept both outcomes")
    md.append("```")
    md.append("")
    md.append("- The suite is Python 2 code. The script uses pyenv's CPython 2.7.18 "
              "(`~/.pyenv/versions/2.7.18`, or `AUTOBAHN_PYTHON`) and fails loudly if it is missing; it never skips.")
    md.append("- It installs the pinned closure in `.ci/autobahn-requirements.txt` with `pip install --no-deps --target` "
              "into `${AUTOBAHN_HOME:-$HOME/.cache/hearth-autobahn}/site` (once; a stamp of the pins makes later runs skip it). "
              "`wsaccel` is built from source, so gcc is needed.")
    md.append("- It starts `${ECHO_BIN:-target/release/examples/echo} --listen 127.0.0.1:PORT --data TMPDIR` on a free port, "
              "waits for its `listening on https://...` line, fills the URL into `.ci/autobahn/fuzzingclient.json` and runs "
              "`wstest -m fuzzingclient`, then stops the server (and fails if it died during the run).")
    md.append("- `.ci/autobahn-check.py` then checks the report (HTML + JSON in `target/autobahn-report/`, "
              "`index.html` for a browser) against the rules below and against `.ci/autobahn/expected.json`.")
    md.append("- Knobs: `AUTOBAHN_TLS=0` (plain `ws://` with `--no-tls`), `AUTOBAHN_WS_PATH`, `AUTOBAHN_REPORT_DIR`, "
              "`AUTOBAHN_TIMEOUT` (default 1200 s), `AUTOBAHN_SPEC`.")
    md.append("- TLS: Autobahn 0.10.9 connects with Twisted's `ClientContextFactory`, which neither verifies the "
              "certificate nor sends SNI, so the echo server's self-made CA needs no setup. This tests the protocol, not "
              "certificate validation.")
    md.append("")
    md.append("## Rules")
    md.append("")
    md.append("- Groups 1-10: every case OK, NON-STRICT or INFORMATIONAL, closing behaviour OK or INFORMATIONAL; all %d cases must run."
              % CASES_1_TO_10)
    md.append("- Except the %d group-9 cases whose message exceeds hearth's message cap of %d bytes: they must be refused "
              "with a clean close %d (Message Too Big) initiated by the server. Autobahn reports those as FAILED / FAILED "
              "(\"did not receive message\" / \"closed by the wrong endpoint\"); that is the expected result. "
              "9.1.1 and 9.2.1 send exactly %d bytes and must pass, as must 10.1.1 (%d bytes auto-fragmented)."
              % (len(OVERSIZE), CAP, CLOSE_TOO_BIG, CAP, CAP))
    md.append("- Groups 12 and 13 (permessage-deflate) stay in the run on purpose: hearth does not offer the extension, so "
              "they must come out UNIMPLEMENTED with a clean close. That proves the client's extension offer is declined "
              "correctly, and costs about 2 seconds.")
    md.append("- The whole `case -> behavior / behaviorClose` table must equal `.ci/autobahn/expected.json`, so any change "
              "(better or worse) is noticed and must be committed on purpose.")
    md.append("")
    md.append("## Last recorded run")
    md.append("")
    info = []
    if meta.get("versions"):
        info.append(meta["versions"])
    if meta.get("url"):
        info.append("`%s://127.0.0.1:PORT%s`" % (transport, meta["url"].split("/", 3)[3:] and "/" + meta["url"].split("/", 3)[3] or "/"))
    if meta.get("run_seconds") is not None:
        info.append("suite run took %d s" % meta["run_seconds"])
    info.append("%d cases" % len(cases))
    md.append("; ".join(info) + ".")
    md.append("")
    md.append("| group | | cases | " + " | ".join(behaviors) + " |")
    md.append("|---|---|--:|" + "--:|" * len(behaviors))
    for g, cnt in per_group.items():
        md.append("| %d | %s | %d | %s |" % (g, GROUPS.get(g, ""), sum(cnt.values()),
                                          " | ".join(str(cnt.get(b, 0)) if cnt.get(b) else "" for b in behaviors)))
    total = collections.Counter(c["behavior"] for c in cases.values())
    md.append("| **all** | | **%d** | %s |" % (len(cases), " | ".join("**%d**" % total[b] for b in behaviors)))
    md.append("")
    closes = [b for b in ("OK", "INFORMATIONAL", "FAILED", "UNCLEAN", "FAILED BY CLIENT", "WRONG CODE")
              if any(c["behaviorClose"] == b for c in cases.values())]
    closes += sorted({c["behaviorClose"] for c in cases.values()} - set(closes))
    per_group_close = collections.OrderedDict()
    for cid, c in cases.items():
        per_group_close.setdefault(group(cid), collections.Counter())[c["behaviorClose"]] += 1
    md.append("Closing behaviour (how the close handshake went):")
    md.append("")
    md.append("| group | cases | " + " | ".join(closes) + " |")
    md.append("|---|--:|" + "--:|" * len(closes))
    for g, cnt in per_group_close.items():
        md.append("| %d | %d | %s |" % (g, sum(cnt.values()), " | ".join(str(cnt[b]) if cnt.get(b) else "" for b in closes)))
    md.append("")
    if problems:
        md.append("**This run breaks the rules in %d case(s)** (see `.ci/autobahn-check.py` output for details):"
                  % len({p[0] for p in problems}))
        md.append("")
        details = {}
        for cid, kind, detail in problems:
            details.setdefault(kind, (cid, detail))
        for kind, ids in grouped(problems).items():
            ex_cid, ex_detail = details[kind]
            md.append("- %s -- %d case(s): %s" % (kind, len([i for i in ids if i != "*"]) or 1, compress_ids(ids)))
            if ex_detail:
                md.append("  - e.g. %s: %s" % (ex_cid, ex_detail.replace("|", "/")))
        md.append("")
    else:
        md.append("All rules hold: every FAILED above is one of the expected oversize cases below.")
        md.append("")
    md.append("### Expected failures: messages over the %d-byte cap (%d cases)" % (CAP, n_over))
    md.append("")
    md.append("| case | what the client sends | server's close |")
    md.append("|---|---|---|")
    for cid in sorted(OVERSIZE, key=case_key):
        if cid not in cases:
            md.append("| %s | %s | (not run) |" % (cid, OVERSIZE[cid][1]))
            continue
        d = rep.details(cid)
        code = cases[cid].get("remoteCloseCode")
        reason = d.get("remoteCloseReason") if d else None
        md.append("| %s | %s | %s%s |" % (cid, OVERSIZE[cid][1], code, (" \"%s\"" % reason.replace("|", "\\|")) if reason else ""))
    md.append("")
    others = [(cid, c) for cid, c in cases.items() if c["behavior"] in ("NON-STRICT", "INFORMATIONAL")
              or c["behaviorClose"] == "INFORMATIONAL"]
    if others:
        md.append("### Not plain OK (%d cases)" % len(others))
        md.append("")
        md.append("| case | behavior / close | description | close code |")
        md.append("|---|---|---|---|")
        for cid, c in others:
            d = rep.details(cid)
            desc = clean(d.get("description", "") if d else "", 200).replace("|", "\\|")
            md.append("| %s | %s / %s | %s | %s |" % (cid, c["behavior"], c["behaviorClose"], desc, c.get("remoteCloseCode")))
        md.append("")
    multi = [(cid, e) for cid, e in expected.items() if any(isinstance(e[k], list) for k in FIELDS)]
    if multi:
        md.append("### Timing-dependent cases")
        md.append("")
        md.append("`.ci/autobahn/expected.json` accepts more than one outcome for these (seen across runs; "
                  "recorded with `--merge-expected`): " + ", ".join("%s (%s)" % (cid, fmt_entry(e)) for cid, e in multi) + ".")
        md.append("")
    md.append("_Generated by `.ci/autobahn-check.py --markdown` from a run of `.ci/autobahn.sh`._")
    md.append("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(md))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", help="the report's index.json (or its directory)")
    ap.add_argument("--expected", default=DEFAULT_EXPECTED, help="expected summary (default: %(default)s)")
    ap.add_argument("--write-expected", action="store_true",
                    help="regenerate the expected summary from this report (entries that already accept it are kept)")
    ap.add_argument("--merge-expected", action="store_true",
                    help="like --write-expected, but add this run's values to the accepted ones (timing-dependent cases)")
    ap.add_argument("--force", action="store_true", help="with --write/--merge-expected: write even if rules are broken")
    ap.add_argument("--markdown", metavar="PATH", help="write a markdown summary (e.g. docs/autobahn.md)")
    ap.add_argument("--agent", help="agent name in index.json (default: the only one)")
    ap.add_argument("--examples", type=int, default=12, metavar="N", help="at most N example lines (one per kind of rule violation)")
    args = ap.parse_args()

    rep = Report(args.report, args.agent)
    summary = rep.summary()
    problems = check_rules(rep)
    bad = set()

    print("autobahn-check: %d cases for agent %r: %s" % (
        len(summary), rep.agent,
        ", ".join("%s %d" % kv for kv in sorted(collections.Counter(v["behavior"] for v in summary.values()).items()))))
    # Rule violations: one line per kind of failure, then a few examples.
    for kind, ids in grouped(problems).items():
        print("RULE  %s: %d case(s): %s" % (kind, len([i for i in ids if i != "*"]) or 1, compress_ids(ids)))
    first = collections.OrderedDict()
    for cid, kind, detail in problems:
        if detail and kind not in first:
            first[kind] = (cid, detail)
    for cid, detail in list(first.values())[:args.examples]:
        print("  e.g. %-8s %s" % (cid, detail))
    bad.update(cid for cid, _, _ in problems)

    old = load_expected(args.expected) if os.path.exists(args.expected) else {}
    if args.write_expected or args.merge_expected:
        if problems and not args.force:
            print("autobahn-check: NOT writing %s: %d rule violation(s) (use --force to record them anyway)"
                  % (args.expected, len(problems)))
        else:
            table = merged_expected(summary, old, widen=args.merge_expected)
            write_expected(args.expected, rep, table)
            print("autobahn-check: wrote %s (%d cases)" % (args.expected, len(table)))
    else:
        if not os.path.exists(args.expected):
            print("DIFF  %s does not exist (generate it with --write-expected)" % args.expected)
            bad.add("*")
        else:
            diffs = compare(summary, old)
            for kind, ids in grouped(diffs).items():
                print("DIFF  %s: %d case(s): %s" % (kind, len(ids), compress_ids(ids)))
            bad.update(cid for cid, _ in diffs)

    if args.markdown:
        if os.path.exists(args.expected):
            old = load_expected(args.expected)
        write_markdown(args.markdown, rep, problems, old)
        print("autobahn-check: wrote %s" % args.markdown)

    failed = len(bad)
    passed = sum(1 for cid in summary if cid not in bad)
    print("autobahn: %d passed, %d failed" % (passed, failed))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
