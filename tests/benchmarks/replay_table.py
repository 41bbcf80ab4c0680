#!/usr/bin/env python
"""Fixed against adaptive redundancy on every crowd dataset: a markdown table from the pure replay.

Standalone script (not collected by pytest); no database, no Django settings::

    .venv/bin/python tests/benchmarks/replay_table.py [--data ../shared/data/crowd] [--seeds 0,1,2]

Every folder of ``--data`` holding ``answers.csv`` and ``gold.csv`` is a dataset. It qualifies when it
has at least ``--qualify`` (5) answers per item on average (answers / items, over every item with an
answer, as in the data README). For each qualifying set, ``fixed`` (all recorded answers) and
``adaptive`` are replayed with the command's defaults (:mod:`tasks.aggregation.replay`) and the same
final aggregation (``--method``, Dawid-Skene); the table gives the mean over the seeds and the worst
seed: answers used, saving, accuracy on gold and the difference in points. A set meets the target when
its worst seed loses at most 0.5 points and saves at least 30%; the last lines also count the sets met on
the mean over the seeds and the (set, seed) runs that meet the target each on their own (with many seeds,
e.g. ``--seeds 0-9``, the steadier measure: on sets of 100-300 gold items one item is worth 0.3-0.9 points).
``--budget 70%`` caps adaptive at 70% of what fixed uses (spent on the least settled items first; pair it with a
target no item reaches, e.g. ``--target 0.999999``, to let the budget decide).
Sets below the threshold are listed after the table, for the record.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tasks.aggregation.adaptive import RedundancyPolicy  # noqa: E402
from tasks.aggregation.io import read_answers_csv, read_gold_csv  # noqa: E402
from tasks.aggregation.replay import (  # noqa: E402
    DEFAULT_CONCENTRATION,
    DEFAULT_MIN_ANSWERS,
    DEFAULT_TARGET,
    parse_budget,
    replay,
)

MAX_LOSS = 0.5  # points of accuracy
MIN_SAVING = 0.30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "crowd")
    parser.add_argument("--seeds", default="0,1,2", help="arrival-order seeds: a comma list and/or ranges (0-9)")
    parser.add_argument("--qualify", type=float, default=5.0, help="mean answers per item to qualify")
    parser.add_argument("--method", default="ds")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET)
    parser.add_argument("--min", type=int, default=DEFAULT_MIN_ANSWERS)
    parser.add_argument("--max", type=int, default=None, help="cap for both policies (default: every recorded answer)")
    parser.add_argument("--concentration", type=float, default=DEFAULT_CONCENTRATION, help="0: independent")
    parser.add_argument(
        "--budget", default=None, help="adaptive's budget: answers, or a share of what fixed uses (70%%)"
    )
    args = parser.parse_args(argv)
    seeds = [n for part in args.seeds.split(",") for n in _seed_range(part)]
    folders = sorted(p for p in args.data.iterdir() if (p / "answers.csv").is_file() and (p / "gold.csv").is_file())
    if not folders:
        print(f"no dataset (answers.csv and gold.csv) under {args.data}", file=sys.stderr)
        return 2
    policy = RedundancyPolicy(min_answers=args.min, max_answers=args.max, target=args.target)
    concentration = args.concentration or None
    print(
        f"adaptive: --min {args.min} --target {args.target} --concentration {args.concentration:g}"
        f"{'' if args.budget is None else ' --budget ' + args.budget}, "
        f"--method {args.method}; seeds {args.seeds} (mean, worst)\n"
    )
    print(
        "| dataset | answers/item | answers fixed | answers adaptive | saving | accuracy fixed | accuracy adaptive "
        "| difference (points) | target met |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    skipped: list[str] = []
    met = qualifying = met_on_mean = runs_met = runs_total = 0
    for folder in folders:
        gold_labels = read_gold_csv(folder / "gold.csv")
        answers = read_answers_csv(folder / "answers.csv", extra_labels=list(gold_labels.values()))
        gold = answers.encode_gold(gold_labels)
        per_item = answers.n_answers / max(answers.n_tasks, 1)
        if per_item < args.qualify:
            skipped.append(f"{folder.name} ({per_item:.2f})")
            continue
        qualifying += 1
        # with a cap, fixed redundancy takes each item's first answers in the seed's order; without one, every
        # seed uses all the answers, so one fit serves them all
        capped_seeds = seeds if args.max is not None else seeds[:1]
        fixed_runs = [
            replay(answers, gold, policy="fixed", redundancy=policy, seed=seed, method=args.method)
            for seed in capped_seeds
        ]
        fixed_runs *= len(seeds) // len(fixed_runs)
        fixed = fixed_runs[0]
        runs = [
            replay(
                answers,
                gold,
                policy="adaptive",
                redundancy=policy,
                seed=seed,
                method=args.method,
                concentration=concentration,
                budget=None if args.budget is None else parse_budget(args.budget, answers, policy),
            )
            for seed in seeds
        ]
        used = [r.answers_used for r in runs]
        savings = [1.0 - u / f.answers_used for u, f in zip(used, fixed_runs, strict=True)]
        diffs = [100.0 * (r.accuracy - f.accuracy) for r, f in zip(runs, fixed_runs, strict=True)]
        fixed_acc = 100 * sum(f.accuracy for f in fixed_runs) / len(fixed_runs)
        accs = [100.0 * r.accuracy for r in runs]
        ok = min(diffs) >= -MAX_LOSS - 1e-9 and min(savings) >= MIN_SAVING
        met += ok
        met_on_mean += sum(diffs) / len(diffs) >= -MAX_LOSS - 1e-9 and sum(savings) / len(savings) >= MIN_SAVING
        runs_met += sum(d >= -MAX_LOSS - 1e-9 and v >= MIN_SAVING for d, v in zip(diffs, savings, strict=True))
        runs_total += len(diffs)
        print(
            f"| {folder.name} | {per_item:.2f} | {fixed.answers_used} | {sum(used) / len(used):.0f} (max {max(used)}) "
            f"| {100 * sum(savings) / len(savings):.1f}% (min {100 * min(savings):.1f}%) "
            f"| {fixed_acc:.2f} | {sum(accs) / len(accs):.2f} (min {min(accs):.2f}) "
            f"| {sum(diffs) / len(diffs):+.2f} (worst {min(diffs):+.2f}) | {'yes' if ok else 'no'} |",
            flush=True,
        )
    print(f"\ntarget met on {met} of {qualifying} qualifying datasets (worst seed)")
    print(f"target met on {met_on_mean} of {qualifying} on the mean over the seeds")
    print(f"target met by {runs_met} of {runs_total} (dataset, seed) runs")
    if skipped:
        print(f"below {args.qualify:g} answers per item (not qualifying): {', '.join(skipped)}")
    return 0


def _seed_range(part: str) -> list[int]:
    first, _, last = part.strip().partition("-")
    return list(range(int(first), int(last) + 1)) if last else [int(first)]


if __name__ == "__main__":
    raise SystemExit(main())
