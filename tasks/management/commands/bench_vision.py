"""``manage.py bench_vision``: measure box consensus on simulated annotators (no database).

    python manage.py bench_vision --images 10000 --annotators 5 --seed 1 --json
    python manage.py bench_vision --shapes polygons --images 500 --annotators 5 --seed 1 --json

Prints ``fused_mean_iou``, ``best_single_annotator_mean_iou``, ``cluster_average_mean_iou``,
``box_recall``, ``box_precision`` and ``seconds`` (the fused aggregation's own time). The simulation and
the measures are described in :mod:`tasks.aggregation.vision_bench`; for ``--shapes polygons`` (polygon
consensus by pixel vote) in :mod:`tasks.aggregation.polygon_bench`.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.aggregation.polygon_bench import run_polygons
from tasks.aggregation.vision_bench import run


class Command(BaseCommand):
    help = "Benchmark box (or polygon) consensus against single annotators and plain averaging on simulated images."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--images", type=int, default=1000)
        parser.add_argument("--annotators", type=int, default=5)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--shapes", choices=("boxes", "polygons"), default="boxes", help="what the annotators draw")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        images, annotators = options["images"], options["annotators"]
        if images < 1 or annotators < 2:
            raise CommandError("Use at least 1 image and 2 annotators.", returncode=2)
        if options["seed"] < 0:
            raise CommandError("--seed must be 0 or a positive whole number.", returncode=2)
        bench = run_polygons if options["shapes"] == "polygons" else run
        result: dict[str, Any] = bench(images=images, annotators=annotators, seed=options["seed"])
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        width = max(len(key) for key in result)
        for key, value in result.items():
            self.stdout.write(f"{key.ljust(width)}  {value}")
