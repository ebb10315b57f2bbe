"""RSS localization against the Cramér–Rao bound (issue #22 item 3) on the correlated-shadowing
benchmark of THEORY §2.2: the inner loop of SCENES.md, 420 readings 2 m apart, n = 3, σ = 6 dB
shadowing correlated over d_c = 30 m (a Gaussian random field on a 5 m grid), 1 dB fast fading,
P0 unknown; the scene and its exact bound are in ``tests/localization/_scene.py``.

Usage:  python bench/localization.py [--draws N] [--seed S] [--methods gls,nls] [--off-centre] [--json]

Per method: RMSE, RMSE/CRLB (the bound without prior, P0 unknown, n known: 28.2 m for the exam
hall at (8, −6) m), RMSE/BCRB (the Bayesian bound with the position prior the method uses), the
share of draws whose 95 % region holds the truth (a coarse answer counts with its circle), the
share located, the 99th percentile of the error and the share inside the building + 15 m. Every
method sees the same draws. ``--off-centre`` adds two transmitters away from the hall: (80, 50) m
inside the loop near its NE corner and (160, 0) m, 40 m outside it, where the prior pulls inward.

Targets (issue #22): RMSE ≤ 1.15 × CRLB and coverage 0.90–0.98 at the hall.
Run from the repository root: ``.venv/bin/python bench/localization.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.localization._scene import SEED, TARGET, Scene, run  # noqa: E402

OFF_CENTRE = ((80.0, 50.0), (160.0, 0.0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--methods", default="gls,nls")
    ap.add_argument("--off-centre", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    targets = [tuple(TARGET)] + (list(OFF_CENTRE) if args.off_centre else [])
    rows = []
    for target in targets:
        scene = Scene(target)
        for method in args.methods.split(","):
            t0 = time.monotonic()
            r = run(method, args.draws, args.seed, scene=scene)
            r.pop("sols")
            r.pop("crlb_xy")
            r["seconds"] = round(time.monotonic() - t0, 1)
            rows.append(r)
            if not args.json:
                print(_row(r) if len(rows) > 1 else _header() + "\n" + _row(r), flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


def _header() -> str:
    return ("| transmitter | method | draws | seed | RMSE (m) | CRLB (m) | RMSE/CRLB | RMSE/BCRB | 95 % coverage "
            "| located | p99 error (m) | in building + 15 m |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def _row(r: dict) -> str:
    tx = f"({r['target'][0]:g}, {r['target'][1]:g})"
    return (f"| {tx} | {r['method']} | {r['draws']} | {r['seed']} | {r['rmse']:.1f} | {r['crlb_rmse']:.1f} | "
            f"{r['ratio']:.2f} | {r['rmse'] / r['bcrb_rmse']:.2f} | {r['coverage']:.3f} | {r['located']:.3f} | "
            f"{r['p99_error']:.0f} | {r['hit']:.3f} |")


if __name__ == "__main__":
    raise SystemExit(main())
