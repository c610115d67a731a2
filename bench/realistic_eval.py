#!/usr/bin/env python3
"""Scores a replayed simulated day against its truth (bench/realistic.sh): visitors and
passers-by (tracked + estimated) against the truth's, devices present per 10 minutes (whole
store) against the truth's shoppers' phones present, and that no one-scan randomized MAC was
stored as a visit. With --co-present, the devices of the bin the 11 phones share instead.
Prints figures and PASS/FAIL lines; exit 1 on a miss. Standard library only."""

import argparse
import datetime as dt
import json
import math
import sqlite3
import sys


def pearson(pairs):
    n = len(pairs)
    mx = sum(p[0] for p in pairs) / n
    my = sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    syy = sum((p[1] - my) ** 2 for p in pairs)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pairs)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def truth_bins(truth):
    """Mean shoppers' devices present per whole-store 10-minute bin (Unix seconds)."""
    bins = {}
    for p in truth.get("presence", []):
        if p["zone"] is None:
            bins.setdefault(p["minute"] // 600 * 600, []).append(p["devices"])
    # Minutes of a bin the truth does not list hold nobody.
    return {b: sum(v) / 10.0 for b, v in bins.items()}


def report_bins(report):
    out = {}
    for b in report["presence"]:
        if b["zone"] is None:
            out[int(dt.datetime.fromisoformat(b["start"]).timestamp())] = b
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--co-present", action="store_true")
    ap.add_argument("--visitors-tolerance", type=float, default=0.10)
    ap.add_argument("--max-mae-of-peak", type=float, default=0.15)
    ap.add_argument("--co-present-tolerance", type=float, default=2.0)
    a = ap.parse_args()
    truth = json.load(open(a.truth))
    report = json.load(open(a.report))
    tb, rb = truth_bins(truth), report_bins(report)
    checks = []
    if a.co_present:
        best = max(tb, key=lambda b: tb[b])
        est = rb.get(best, {}).get("devices", 0.0)
        lo, hi = rb.get(best, {}).get("devices_low", 0.0), rb.get(best, {}).get("devices_high", 0.0)
        print(f"co-present: truth {tb[best]:.2f} devices over the shared bin (11 phones, "
              f"7 classes), estimated {est:.2f} [{lo:.2f}, {hi:.2f}]")
        checks.append((f"devices within ±{a.co_present_tolerance:g}",
                       abs(est - tb[best]) <= a.co_present_tolerance, f"{est - tb[best]:+.2f}"))
    else:
        kinds = {}
        for v in truth["visits"]:
            kinds[v["kind"]] = kinds.get(v["kind"], 0) + 1
        tv, tp = kinds.get("visitor", 0), kinds.get("passerby", 0)
        mv, mp = report["visitors"], report["passersby"]
        print(f"visitors:   truth {tv}, reported {mv} ({(mv - tv) / tv * 100:+.1f} %) = tracked "
              f"{report['visitors_tracked']} + estimated {report['visitors_estimated']:.1f} "
              f"[{report['visitors_low']:.0f}, {report['visitors_high']:.0f}]")
        print(f"passers-by: truth {tp}, reported {mp} ({(mp - tp) / tp * 100:+.1f} %) = tracked "
              f"{report['passersby_tracked']} + estimated {report['passersby_estimated']:.1f} "
              f"[{report['passersby_low']:.0f}, {report['passersby_high']:.0f}]")
        print(f"flow model: {report['flow_model']}")
        pairs = [(rb.get(b, {}).get("devices", 0.0), y) for b, y in sorted(tb.items())]
        peak = max(y for _, y in pairs)
        mae = sum(abs(x - y) for x, y in pairs) / len(pairs)
        print(f"devices present per 10 minutes: {len(pairs)} bins, truth peak {peak:.1f}, "
              f"MAE {mae:.2f} ({mae / peak * 100:.1f} % of the peak), r {pearson(pairs):.3f}")
        db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
        one_scan = db.execute(
            "SELECT count(*) FROM visits WHERE randomized = 1 AND associated = 0 "
            "AND connected = 0 AND end_ms - start_ms < 10000").fetchone()[0]
        print(f"one-scan randomized MACs stored as visits: {one_scan}")
        checks += [
            (f"visitors within ±{a.visitors_tolerance * 100:g} %",
             abs(mv - tv) <= tv * a.visitors_tolerance, f"{(mv - tv) / tv * 100:+.1f} %"),
            (f"devices MAE <= {a.max_mae_of_peak * 100:g} % of the peak",
             mae <= peak * a.max_mae_of_peak, f"{mae / peak * 100:.1f} %"),
            ("no one-scan MAC stored as a visit", one_scan == 0, str(one_scan)),
        ]
    print("targets:")
    for name, ok, got in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {got}")
    sys.exit(0 if all(ok for _, ok, _ in checks) else 1)


if __name__ == "__main__":
    main()
