#!/usr/bin/env python
"""Where does adaptive redundancy lose accuracy against fixed redundancy?  A diagnostic table.

Standalone script (not collected by pytest); no database, no Django settings::

    .venv/bin/python tests/benchmarks/replay_diagnose.py [--data ../shared/data/crowd] [--seeds 0,1,2]

For every dataset that qualifies as in ``replay_table.py`` (5+ answers per item), the adaptive replay
(the command's defaults) is scored three ways against the Dawid-Skene labels of all recorded answers
(differences in points of accuracy on gold, mean and worst seed):

- ``final DS``: what the replay reports, a Dawid-Skene fit on the answers the policy used;
- ``full-data skills``: the used answers scored with the worker matrices and class prior of the fit
  on *all* answers, so only the stopping decisions differ from fixed redundancy (a loss here is
  a stopping loss; the rest of the ``final DS`` loss comes from estimating skills on fewer answers);
- ``drop one``: a floor for comparison, every item's last recorded answer (in the seeded order)
  left out, which saves one answer per item without looking at any answer.

``1 item`` is what one gold item is worth in points: where it exceeds the 0.5-point target, the
target asks for no net loss of a single item on every seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tasks.aggregation.adaptive import RedundancyPolicy, subset  # noqa: E402
from tasks.aggregation.dawid_skene import DawidSkene  # noqa: E402
from tasks.aggregation.io import read_answers_csv, read_gold_csv  # noqa: E402
from tasks.aggregation.replay import (  # noqa: E402
    DEFAULT_CONCENTRATION,
    DEFAULT_MIN_ANSWERS,
    DEFAULT_TARGET,
    adaptive_selection,
    arrival_rank,
    parse_budget,
)


def _points(labels: np.ndarray, reference: float, gold_task: np.ndarray, gold_label: np.ndarray) -> float:
    return 100.0 * (float((labels[gold_task] == gold_label).mean()) - reference)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "crowd")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated arrival-order seeds")
    parser.add_argument("--qualify", type=float, default=5.0, help="mean answers per item to qualify")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET)
    parser.add_argument("--budget", default=None, help="adaptive's budget: answers, or a share of all (70%%)")
    parser.add_argument("--only", default="", help="comma list of dataset names (default: every qualifying one)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    only = {name for name in args.only.split(",") if name}
    policy = RedundancyPolicy(min_answers=DEFAULT_MIN_ANSWERS, target=args.target)
    print("| dataset | gold items | 1 item (points) | saving | final DS | full-data skills | drop one (saving) |")
    print("|---|---|---|---|---|---|---|")
    folders = sorted(p for p in args.data.iterdir() if (p / "answers.csv").is_file() and (p / "gold.csv").is_file())
    for folder in folders:
        gold_labels = read_gold_csv(folder / "gold.csv")
        answers = read_answers_csv(folder / "answers.csv", extra_labels=list(gold_labels.values()))
        if answers.n_answers / max(answers.n_tasks, 1) < args.qualify or (only and folder.name not in only):
            continue
        budget = None if args.budget is None else parse_budget(args.budget, answers, policy)
        gold = answers.encode_gold(gold_labels)
        full = DawidSkene().fit(answers)
        reference = float((full.label_codes_[gold.task] == gold.label).mean())
        log_conf = np.log(full.confusion_)  # [worker, true, answered]
        cap = np.bincount(answers.task, minlength=answers.n_tasks)
        rows = []
        for seed in seeds:
            rank = arrival_rank(answers, seed)
            used, _, _ = adaptive_selection(answers, rank, cap, policy, 0.1, "ds", None, DEFAULT_CONCENTRATION, budget)
            chosen = subset(answers, used)
            final = DawidSkene().fit(chosen).label_codes_
            scores = np.zeros((answers.n_tasks, answers.n_classes)) + np.log(full.class_prior_)
            np.add.at(scores, chosen.task, log_conf[chosen.worker, :, chosen.label])
            dropped = DawidSkene().fit(subset(answers, rank < cap[answers.task] - 1)).label_codes_
            rows.append(
                (
                    1.0 - used.sum() / answers.n_answers,
                    _points(final, reference, gold.task, gold.label),
                    _points(scores.argmax(axis=1), reference, gold.task, gold.label),
                    _points(dropped, reference, gold.task, gold.label),
                )
            )
        r = np.array(rows)
        cell = [f"{r[:, j].mean():+.2f} (worst {r[:, j].min():+.2f})" for j in range(4)]
        print(
            f"| {folder.name} | {gold.size} | {100.0 / gold.size:.2f} | {100 * r[:, 0].mean():.1f}% | {cell[1]} "
            f"| {cell[2]} | {cell[3]} ({100 * answers.n_tasks / answers.n_answers:.1f}%) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
