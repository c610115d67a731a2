#!/usr/bin/env python3
"""Scores store-edge's people-present estimate on the real development set, leaving days out.

Input: a data directory into which `store-edge run --once` replayed every day's capture, the
development set's occupancy files (`time,people` change points, Europe/Prague local time) and
the config used. For each held-out day, head counts are sampled from the other days (at most
`--per-day` instants per training day, seeded, at bins the sniffer heard), the product fits them
with `store-edge calibrate --dry-run --json`, and the fit predicts the held-out day's whole-store
bins. Printed: Pearson r and mean absolute error of people present per 10 minutes and per hour
over all held-out days, and per day. Exit 1 when a target is missed.

Standard library only.
"""

import argparse
import bisect
import csv
import datetime as dt
import glob
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import zoneinfo

BIN_S = 600
MIN_HEARD = 8  # the product's MIN_MINUTES_HEARD_TO_FIT: bins heard less are capture gaps


def pearson(pairs):
    n = len(pairs)
    if n < 2:
        return float("nan")
    mx = sum(p[0] for p in pairs) / n
    my = sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    syy = sum((p[1] - my) ** 2 for p in pairs)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pairs)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def mae(pairs):
    return sum(abs(p[0] - p[1]) for p in pairs) / len(pairs) if pairs else float("nan")


class Occupancy:
    """A change-point series: each row holds from its time to the next row's."""

    def __init__(self, path, tz):
        self.t, self.y = [], []
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                local = dt.datetime.fromisoformat(row["time"]).replace(tzinfo=tz)
                self.t.append(local.timestamp())
                self.y.append(float(row["people"]))
        self.start, self.end = self.t[0], self.t[-1]

    def at(self, ts):
        i = bisect.bisect_right(self.t, ts) - 1
        return self.y[max(i, 0)]

    def mean(self, a, b):
        """Time-weighted mean over [a, b), or None unless the series covers it."""
        if a < self.start or b > self.end:
            return None
        total, t = 0.0, a
        i = bisect.bisect_right(self.t, a) - 1
        while t < b:
            nxt = self.t[i + 1] if i + 1 < len(self.t) else b
            seg_end = min(nxt, b)
            total += self.y[i] * (seg_end - t)
            t = seg_end
            i += 1
        return total / (b - a)


def load_bins(db_path):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT p.body FROM presence_bins p WHERE p.zone = '' AND p.revision = "
        "(SELECT MAX(q.revision) FROM presence_bins q WHERE q.start_ms = p.start_ms AND q.zone = '')"
    ).fetchall()
    bins = {}
    for (body,) in rows:
        r = json.loads(body)
        bins[r["start_ms"] // 1000] = r
    return bins


def fit(binary, config, counts, tz):
    """Runs the product's calibrate (dry run) on (ts, people) counts; gives its fit (JSON)."""
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write("time,people\n")
        for ts, people in counts:
            local = dt.datetime.fromtimestamp(ts, tz)
            f.write(f"{local.strftime('%Y-%m-%d %H:%M:%S')},{people:g}\n")
        path = f.name
    try:
        out = subprocess.run(
            [binary, "calibrate", "--config", config, "--headcounts", path, "--dry-run", "--json"],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(path)
    try:
        r = json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.exit(f"calibrate printed no JSON: {out.stderr.strip()}")
    if not r.get("fit"):
        return None, r.get("refused")
    return r["fit"], None


def people_of(f, b):
    """People of a stored bin under fit `f`, as the product computes them (Calibration::people):
    two slopes on the bin's calibration inputs, or the old form on its devices."""
    if f.get("slope_tracked") is None:
        return max(0.0, f["intercept"] + f["slope"] * b["devices"])
    t = b.get("fit_tracked")
    e = b.get("fit_estimated")
    t = b["devices_tracked"] if t is None else t
    e = b["devices_estimated"] if e is None else e
    return max(0.0, f["intercept"] + f["slope_tracked"] * t + f["slope"] * e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="data directory of the replay")
    ap.add_argument("--config", required=True, help="config the replay used (for calibrate)")
    ap.add_argument("--dev", required=True, help="development set directory")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--per-day", type=int, default=12, help="head counts per training day")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-r10", type=float, default=0.85)
    ap.add_argument("--min-rh", type=float, default=0.90)
    ap.add_argument("--max-maeh", type=float, default=2.0)
    a = ap.parse_args()

    tz = zoneinfo.ZoneInfo("Europe/Prague")
    bins = load_bins(os.path.join(a.data, "store-edge.db"))
    heard = lambda start: (start in bins and bins[start]["minutes_heard"] >= MIN_HEARD)
    days = {}
    for path in sorted(glob.glob(os.path.join(a.dev, "*.occupancy.csv"))):
        day = os.path.basename(path).split("_")[1].split(".")[0]
        days[day] = Occupancy(path, tz)

    # Per day: 10-minute (start, devices, truth), hourly (start, [devices], truth), and the head
    # counts a training day offers.
    per_day = {}
    for day, occ in days.items():
        b10 = []
        t = math.floor(occ.start / BIN_S) * BIN_S
        while t < occ.end:
            y = occ.mean(t, t + BIN_S)
            if y is not None and heard(t):
                b10.append((t, bins[t], y))
            t += BIN_S
        hours = []
        t = math.floor(occ.start / 3600) * 3600
        while t < occ.end:
            y = occ.mean(t, t + 3600)
            xs = [bins[s] for s in range(t, t + 3600, BIN_S) if heard(s)]
            if y is not None and len(xs) >= 4:
                hours.append((t, xs, y))
            t += 3600
        rnd = random.Random(a.seed * 100_003 + int(day.replace("-", "")))
        counts, tries = [], 0
        while len(counts) < a.per_day and tries < 1000:
            tries += 1
            ts = rnd.uniform(occ.start, occ.end)
            if heard(math.floor(ts / BIN_S) * BIN_S):
                counts.append((ts, occ.at(ts)))
        per_day[day] = (b10, hours, counts)

    p10, ph, rows = [], [], []
    for day in sorted(per_day):
        train = [c for d, v in per_day.items() if d != day for c in v[2]]
        f, refused = fit(a.binary, a.config, train, tz)
        if f is None:
            print(f"{day}: calibration refused: {refused}")
            continue
        icpt, slope = f["intercept"], f["slope"]
        people = lambda b: people_of(f, b)
        d10 = [(people(x), y) for _, x, y in per_day[day][0]]
        dh = [(sum(people(x) for x in xs) / len(xs), y) for _, xs, y in per_day[day][1]]
        p10 += d10
        ph += dh
        rows.append((day, len(train), f.get("slope_tracked") or 0.0, slope, icpt, len(d10), mae(d10), len(dh), mae(dh)))

    print("held-out day  train_counts  slope_tracked  slope  intercept  bins10  mae10  hours  maeh")
    for day, n, slope_t, slope, icpt, n10, m10, nh, mh in rows:
        print(f"{day}  {n:12d}  {slope_t:13.2f}  {slope:5.2f}  {icpt:9.2f}  {n10:6d}  {m10:5.2f}  {nh:5d}  {mh:4.2f}")
    r10, m10, rh, mh = pearson(p10), mae(p10), pearson(ph), mae(ph)
    print(f"\nper 10 minutes: r {r10:.3f}  MAE {m10:.2f} people  ({len(p10)} bins, {len(rows)} held-out days)")
    print(f"per hour:       r {rh:.3f}  MAE {mh:.2f} people  ({len(ph)} hours)")
    checks = [
        (f"r per 10 minutes >= {a.min_r10}", r10 >= a.min_r10, f"{r10:.3f}"),
        (f"r per hour >= {a.min_rh}", rh >= a.min_rh, f"{rh:.3f}"),
        (f"MAE per hour <= {a.max_maeh}", mh <= a.max_maeh, f"{mh:.2f}"),
    ]
    print("\ntargets:")
    for name, ok, got in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {got}")
    sys.exit(0 if all(ok for _, ok, _ in checks) else 1)


if __name__ == "__main__":
    main()
