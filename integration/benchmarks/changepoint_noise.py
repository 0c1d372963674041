"""False alarms and detection power of the wall-clock change-point detector, measured.

    python integration/benchmarks/changepoint_noise.py [--series 300] [--length 60] [--json]

Synthetic nightly histories at several noise levels (lognormal and gaussian, CV 2-20 %):
  - no step: the detector runs after every night on the history so far, as the nightly does;
    a false alarm is an alert no earlier alert of the same series already explains.
    Reported per series (any alert in `length` nights) and per night checked;
  - a +20 % step at a random night of the second half: power is the share of series whose
    history, 10 nights after the step, holds an alert within one night of it.
Also a history with one 3x spike per series, which must stay silent.
A script, not a test: its numbers go into docs/design.md.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from stackci.regressions.changepoint import DEFAULT, NoiseConfig, change_points

CVS = (0.02, 0.05, 0.10, 0.20)
FAMILIES = ("lognormal", "gaussian")


def noise(rng, family: str, cv: float, n: int) -> np.ndarray:
    if family == "lognormal":
        sigma = np.sqrt(np.log(1 + cv * cv))
        return np.exp(rng.normal(-sigma * sigma / 2, sigma, n))
    return np.clip(rng.normal(1.0, cv, n), 0.05, None)


def nightly_alerts(values: np.ndarray, config: NoiseConfig) -> list[int]:
    alerts: list[int] = []
    for night in range(2 * config.min_size, len(values) + 1):
        for cp in change_points(values[:night], config):
            if all(abs(cp.index - seen) > config.min_size for seen in alerts):
                alerts.append(cp.index)
    return alerts


def measure(series: int, length: int, config: NoiseConfig, seed: int = 0) -> list[dict]:
    rows = []
    for family in FAMILIES:
        for cv in CVS:
            rng = np.random.default_rng(seed)
            alarmed = alarms = nights = detected = spiked = 0
            for _ in range(series):
                quiet = noise(rng, family, cv, length)
                found = nightly_alerts(quiet, config)
                alarmed += bool(found)
                alarms += len(found)
                nights += length - 2 * config.min_size + 1
                step_at = int(rng.integers(length // 2, length - 10))
                stepped = noise(rng, family, cv, step_at + 10)
                stepped[step_at:] *= 1.2
                detected += any(abs(cp.index - step_at) <= 1
                                for cp in change_points(stepped, config))
                spike = noise(rng, family, cv, length)
                spike[int(rng.integers(0, length))] *= 3.0
                spiked += bool(change_points(spike, config))
            rows.append({"noise": family, "cv": cv, "series": series, "length": length,
                         "false_alarm_per_series": alarmed / series,
                         "false_alarm_per_night": alarms / nights,
                         "power_20pct_step": detected / series,
                         "alarm_on_single_spike": spiked / series})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--length", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.series, args.length, DEFAULT, args.seed)
    if args.json:
        print(json.dumps({"config": DEFAULT.to_dict(), "rows": rows}, indent=2))
        return
    print(f"config {DEFAULT.to_dict()}; {args.series} series of {args.length} nights each")
    print(f"{'noise':10} {'CV':>5} {'FA/series':>10} {'FA/night':>9} {'power 20%':>10} "
          f"{'spike FA':>9}")
    for r in rows:
        print(f"{r['noise']:10} {r['cv']:5.0%} {r['false_alarm_per_series']:10.3f} "
              f"{r['false_alarm_per_night']:9.4f} {r['power_20pct_step']:10.3f} "
              f"{r['alarm_on_single_spike']:9.3f}")


if __name__ == "__main__":
    main()
