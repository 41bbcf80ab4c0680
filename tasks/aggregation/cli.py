"""The work behind ``manage.py aggregate``, callable without Django.

:func:`run_aggregate` reads the answers (and gold), fits the aggregator and writes the consensus
CSV; the management command wraps it.  :func:`fast_main` lets ``manage.py`` run a plain
``aggregate --answers A --method M --output O [--gold G]`` call without ``django.setup()`` (loading
the app registry, settings and their imports costs about half a second, more than aggregating a
million answers).  Anything it does not recognise as such a call (``--help``, Django's common
options, an unknown method, a missing option, ...) makes it return ``None`` and ``manage.py`` hands
the command line to Django unchanged, so help texts and usage errors stay Django's.  Errors are
rendered as Django renders a ``CommandError`` (``CommandError: <message>`` on stderr, exit code 2).

No pandas on the categorical path: the CSV reader and writer are numpy and plain Python.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

METHODS = ("mv", "wmv", "wawa", "ds", "ods", "glad", "mace")
PROGRESS_AFTER_ANSWERS = 200_000
"""Inputs with at least this many answers report progress on stderr."""
_OPTIONS = ("answers", "method", "output", "gold")
_REQUIRED = ("answers", "method", "output")


class AggregateError(Exception):
    """The run cannot go on; the message is one sentence for the user (exit code 2)."""


def run_aggregate(
    *, answers: str, method: str, output: str, gold: str | None = None, stderr: TextIO | None = None
) -> None:
    """Aggregate ``answers`` (CSV ``task,worker,label``) with ``method`` into ``output`` (CSV
    ``task,label,confidence``).  ``gold`` is an optional CSV ``task,label`` of known labels, clamped.

    Warnings and progress go to ``stderr`` (default ``sys.stderr``); bad input, a failing fit or an
    unwritable output raise :class:`AggregateError`."""
    from tasks.aggregation.io import InputError, read_answers_csv, read_gold_csv, write_consensus_csv
    from tasks.aggregation.registry import get_aggregator

    err = stderr if stderr is not None else sys.stderr
    started = time.perf_counter()
    try:
        gold_labels = read_gold_csv(gold) if gold else None
        data = read_answers_csv(answers, extra_labels=list(gold_labels.values()) if gold_labels else ())
    except InputError as exc:
        raise AggregateError(str(exc)) from exc
    if data.n_duplicates:
        err.write(
            f"warning: {data.n_duplicates} answer(s) replaced: a worker answered the same task "
            "more than once; the last answer was kept.\n"
        )
    verbose = data.n_answers >= PROGRESS_AFTER_ANSWERS

    def progress(message: str) -> None:
        err.write(f"aggregate: {message} ({time.perf_counter() - started:.1f}s)\n")
        err.flush()

    if verbose:
        progress(
            f"read {data.n_answers:,} answers: {data.n_tasks:,} tasks, "
            f"{data.n_workers:,} workers, {data.n_classes} labels; running {method}"
        )
    params: dict[str, Any] = {"progress": progress} if verbose and method not in {"mv", "wmv", "wawa"} else {}
    model = get_aggregator(method, **params)
    try:
        model.fit(data, gold_labels)
    except ValueError as exc:
        raise AggregateError(str(exc)) from exc
    try:
        write_consensus_csv(output, data.task_names, data.classes[model.label_codes_], model.confidence_)
    except OSError as exc:
        raise AggregateError(f"{output}: cannot write ({exc.strerror or exc}).") from exc
    if verbose:
        progress(f"wrote {data.n_tasks:,} labels to {output}")


def parse_plain_call(argv: Sequence[str]) -> dict[str, str] | None:
    """The options of a plain ``aggregate`` call, or ``None`` when the command line holds anything
    else (then Django's parser must see it: help, common options, abbreviations, errors)."""
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--"):
            return None
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
        i += 1
        if name not in _OPTIONS or name in found or not value or value.startswith("-"):
            return None
        found[name] = value
    if any(name not in found for name in _REQUIRED) or found["method"] not in METHODS:
        return None
    return found


def fast_main(argv: Sequence[str]) -> int | None:
    """Run ``aggregate`` from the arguments after the command name; the exit code, or ``None`` when
    the command line is not a plain call (see :func:`parse_plain_call`)."""
    options = parse_plain_call(argv)
    if options is None:
        return None
    try:
        run_aggregate(
            answers=options["answers"], method=options["method"], output=options["output"], gold=options.get("gold")
        )
    except AggregateError as exc:
        sys.stderr.write(f"CommandError: {exc}\n")
        return 2
    return 0
