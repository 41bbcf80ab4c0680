"""The block policy's targets (issue 4) over several seeds of the crowd simulator, as one table.

    .venv/bin/python tests/benchmarks/block_policy_table.py --seeds 1-10 --jobs 2

Each seed runs ``manage.py simulate_crowd --items 2000 --classes 4 --redundancy 3 --gold-rate 0.1
--block-policy default --workers 100 --spammers 15 --seed K --json`` in its own process on its own SQLite
database (a copy of one migrated database in a temporary folder, in memory under /dev/shm when there is
one: on disk, SQLite's commits dominate the run time), so the runs do not share workers or jobs.
Targets per seed: every spammer blocked, at most one honest worker blocked, a median of at most 10 gold
answers to block a spammer, and consensus accuracy higher after excluding the blocked workers than before.
Prints one row per seed (and each seed's JSON on stderr as it ends) and exits 1 when a seed misses a
target. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("spammers_blocked", "honest_blocked", "gold_answers_per_block", "accuracy_before_exclusion")


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    return seeds


def misses(row: dict[str, Any], spammers: int) -> list[str]:
    """The targets a seed's result misses (empty when it meets them all)."""
    failed = []
    if row["spammers_blocked"] != spammers:
        failed.append("spammers")
    if row["honest_blocked"] > 1:
        failed.append("honest")
    if row["gold_answers_per_block"] is None or row["gold_answers_per_block"] > 10:
        failed.append("gold/block")
    before, after = row["accuracy_before_exclusion"], row["accuracy_after_exclusion"]
    if before is None or after is None or after <= before:
        failed.append("accuracy")
    return failed


def run_seed(seed: int, template: Path, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    database = folder / f"seed{seed}.sqlite3"
    shutil.copyfile(template, database)
    command = [
        sys.executable, "manage.py", "simulate_crowd", "--items", str(args.items), "--classes", "4",
        "--redundancy", "3", "--gold-rate", "0.1", "--block-policy", "default", "--workers", str(args.workers),
        "--spammers", str(args.spammers), "--seed", str(seed), "--json",
    ]  # fmt: skip
    env = os.environ | {"DATABASE_URL": f"sqlite:///{database}"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    database.unlink()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["seed"] = seed
    print(json.dumps(result), file=sys.stderr, flush=True)  # each seed as it ends
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 1,2,5")
    parser.add_argument("--jobs", type=int, default=1, help="Seeds run at once.")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--spammers", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="Print the rows as JSON instead of a table.")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    memory = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="block-policy-", dir=memory if memory.is_dir() else None) as tmp:
        folder = Path(tmp)
        template = folder / "migrated.sqlite3"
        env = os.environ | {"DATABASE_URL": f"sqlite:///{template}"}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            rows = list(pool.map(lambda seed: run_seed(seed, template, folder, args), seeds))
    failed = {row["seed"]: misses(row, args.spammers) for row in rows}
    if args.json:
        print(json.dumps([row | {"misses": failed[row["seed"]]} for row in rows]))
    else:
        print("seed  spammers_blocked  honest_blocked  gold_answers_per_block  acc_before  acc_after  misses")
        for row in rows:
            print(
                f"{row['seed']:>4}  {row['spammers_blocked']:>16}  {row['honest_blocked']:>14}  "
                f"{row['gold_answers_per_block']!s:>22}  {row['accuracy_before_exclusion']!s:>10}  "
                f"{row['accuracy_after_exclusion']!s:>9}  {','.join(failed[row['seed']]) or '-'}"
            )
    return 1 if any(failed.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
