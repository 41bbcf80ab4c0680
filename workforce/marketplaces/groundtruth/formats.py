"""Ground Truth's file formats, parsed without Django: output manifests and raw worker responses.

An output manifest is JSON Lines: the input line (``source-ref`` or ``source`` plus any extra keys)
with the label under the job's label attribute name and ``<attribute>-metadata`` beside it. The label
is found by that attribute name (given, or the one key whose ``-metadata`` partner carries Ground
Truth's ``type``/``job-name``), never by suffix alone: input data may also end in ``-metadata``.

Worker responses live at ``.../worker-response/iteration-N/<datasetObjectId>/<time>.json``, one file per
object and iteration, holding ``{"answers": [{"workerId", "answerContent", "submissionTime", ...}]}``.
``datasetObjectId`` is the object's 0-based line in the input manifest.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from workforce.jsonlimits import load_storable, reason

WORKER_RESPONSE_PATH = re.compile(r"(?:^|/)worker-response/iteration-(\d+)/(\d+)/([^/]+\.json)$")
MAX_FILE_BYTES = 20 * 1024 * 1024


class GroundTruthFormatError(ValueError):
    """A file is not in the shape Ground Truth writes; the message says where."""


@dataclass(frozen=True)
class ManifestLine:
    dataset_object_id: int
    source_ref: str | None
    source: str | None
    inputs: Mapping[str, Any]
    label: Any
    metadata: Mapping[str, Any]
    has_label: bool

    @property
    def task_type(self) -> str:
        return str(self.metadata.get("type", ""))


@dataclass(frozen=True)
class Manifest:
    label_attribute: str
    lines: list[ManifestLine]
    labeling_job_name: str
    task_type: str
    class_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerResponse:
    dataset_object_id: int
    iteration: int
    worker_id: str
    answer_content: Mapping[str, Any]
    submitted_at: datetime | None
    accepted_at: datetime | None
    seconds: float | None
    path: str


def _is_gt_metadata(value: Any) -> bool:
    return isinstance(value, dict) and ("type" in value or "job-name" in value)


def find_label_attribute(objects: Iterable[Mapping[str, Any]]) -> str:
    """The label attribute name shared by the labeled lines, or raise when none or several fit."""
    candidates: set[str] | None = None
    for obj in objects:
        keys = {k for k in obj if not k.endswith("-metadata") and _is_gt_metadata(obj.get(f"{k}-metadata"))}
        keys |= {k[: -len("-metadata")] for k in obj if k.endswith("-metadata") and _is_gt_metadata(obj[k])}
        if not keys:
            continue
        candidates = keys if candidates is None else candidates & keys
    if not candidates:
        raise GroundTruthFormatError("no line carries a Ground Truth label (an attribute with a '-metadata' partner)")
    if len(candidates) > 1:
        raise GroundTruthFormatError(
            f"several label attributes fit ({', '.join(sorted(candidates))}); name one with --label-attribute"
        )
    return next(iter(candidates))


def _json_lines(text: str) -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = load_storable(line)
        except ValueError as exc:
            raise GroundTruthFormatError(f"line {number} is not JSON we can read ({reason(exc)})") from exc
        if not isinstance(obj, dict):
            raise GroundTruthFormatError(f"line {number} is not a JSON object")
        rows.append((number, obj))
    return rows


def _class_names(lines: list[ManifestLine]) -> list[str]:
    """Class names in class-index order where the metadata tells it, then the rest in order seen."""
    by_index: dict[int, str] = {}
    seen: list[str] = []

    def see(name: Any) -> None:
        if isinstance(name, str) and name and name not in seen:
            seen.append(name)

    for line in lines:
        meta = line.metadata
        if isinstance(meta.get("class-name"), str) and isinstance(line.label, int):
            by_index.setdefault(line.label, meta["class-name"])
        for key in ("class-map", "internal-color-map"):
            mapping = meta.get(key)
            if isinstance(mapping, dict):
                for index, entry in mapping.items():
                    name = entry.get("class-name") if isinstance(entry, dict) else entry
                    if str(index).isascii() and str(index).isdigit() and isinstance(name, str):
                        by_index.setdefault(int(index), name)
        see(meta.get("class-name"))
    ordered = [by_index[i] for i in sorted(by_index)]
    return ordered + [name for name in seen if name not in ordered]


def parse_manifest(text: str, *, label_attribute: str | None = None, require_labels: bool = True) -> Manifest:
    """Parse an output manifest (or, with ``require_labels=False`` and the attribute named, an input
    manifest); each line's position is its ``datasetObjectId``."""
    rows = _json_lines(text)
    if not rows:
        raise GroundTruthFormatError("the manifest has no lines")
    attribute = label_attribute or find_label_attribute(obj for _, obj in rows)
    meta_key = f"{attribute}-metadata"
    lines: list[ManifestLine] = []
    for index, (number, obj) in enumerate(rows):
        source_ref, source = obj.get("source-ref"), obj.get("source")
        if not isinstance(source_ref, str) and not isinstance(source, str):
            raise GroundTruthFormatError(f"line {number} has neither 'source-ref' nor 'source'")
        raw_meta = obj.get(meta_key)
        metadata: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        lines.append(
            ManifestLine(
                dataset_object_id=index,
                source_ref=source_ref if isinstance(source_ref, str) else None,
                source=source if isinstance(source, str) else None,
                inputs={k: v for k, v in obj.items() if k not in (attribute, meta_key)},
                label=obj.get(attribute),
                metadata=metadata,
                has_label=attribute in obj,
            )
        )
    labeled = [line for line in lines if line.has_label]
    if label_attribute and not labeled and require_labels:
        raise GroundTruthFormatError(f"no line has the label attribute {label_attribute!r}")
    first = labeled[0].metadata if labeled else {}
    job_name = str(first.get("job-name", attribute)).removeprefix("labeling-job/")
    return Manifest(attribute, lines, job_name, str(first.get("type", "")), _class_names(lines))


def consolidated_value(line: ManifestLine) -> Any:
    """A classification label by class name (a list of them for multi-label); otherwise the raw JSON."""
    meta = line.metadata
    if isinstance(meta.get("class-name"), str):
        return meta["class-name"]
    class_map = meta.get("class-map")
    if isinstance(line.label, list) and isinstance(class_map, dict) and all(isinstance(v, int) for v in line.label):
        return [class_map.get(str(v), str(v)) for v in line.label]
    return line.label


def answer_value(content: Mapping[str, Any]) -> Any:
    """A worker's answer: the label (or labels) of a classification element, else the content as is."""
    if len(content) == 1:
        inner = next(iter(content.values()))
        if isinstance(inner, dict):
            if isinstance(inner.get("label"), str):
                return inner["label"]
            labels = inner.get("labels")
            if isinstance(labels, list) and all(isinstance(v, str) for v in labels):
                return labels
    return dict(content)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_worker_response(path: str, data: bytes) -> list[WorkerResponse]:
    """The answers of one worker-response file (its path gives the iteration and object id)."""
    match = WORKER_RESPONSE_PATH.search(path)
    if match is None:
        raise GroundTruthFormatError(f"{path} is not under worker-response/iteration-N/<datasetObjectId>/")
    try:
        obj = load_storable(data)
    except UnicodeDecodeError as exc:
        raise GroundTruthFormatError(f"{path} is not JSON") from exc
    except ValueError as exc:
        raise GroundTruthFormatError(f"{path} is not JSON we can read ({reason(exc)})") from exc
    answers = obj.get("answers") if isinstance(obj, dict) else None
    if not isinstance(answers, list):
        raise GroundTruthFormatError(f"{path} has no 'answers' list")
    responses: list[WorkerResponse] = []
    for position, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("workerId"), str):
            raise GroundTruthFormatError(f"{path}: answer {position} has no 'workerId'")
        content = answer.get("answerContent")
        if not isinstance(content, dict):
            raise GroundTruthFormatError(f"{path}: answer {position} has no 'answerContent' object")
        seconds = answer.get("timeSpentInSeconds")
        responses.append(
            WorkerResponse(
                dataset_object_id=int(match.group(2)),
                iteration=int(match.group(1)),
                worker_id=answer["workerId"],
                answer_content=content,
                submitted_at=_time(answer.get("submissionTime")),
                accepted_at=_time(answer.get("acceptanceTime")),
                seconds=float(seconds) if isinstance(seconds, int | float) else None,
                path=path,
            )
        )
    return responses


def _wanted(name: str) -> bool:
    return WORKER_RESPONSE_PATH.search(name) is not None and not PurePosixPath(name).name.startswith("._")


def iter_worker_response_files(location: Path) -> Iterator[tuple[str, bytes]]:
    """``(path, bytes)`` of every worker-response file in a directory tree or a (gzipped) tar archive,
    skipping macOS ``._*`` AppleDouble files."""
    if location.is_dir():
        for path in sorted(location.rglob("*.json")):
            relative = path.relative_to(location).as_posix()
            if _wanted(relative) and path.is_file():
                yield relative, path.read_bytes()
        return
    try:
        archive = tarfile.open(location, mode="r:*")  # noqa: SIM115 (closed by the ``with`` below)
    except (tarfile.TarError, OSError) as exc:
        raise GroundTruthFormatError(f"{location} is neither a directory nor a tar archive") from exc
    with archive:
        try:
            for member in archive:
                if not member.isfile() or not _wanted(member.name):
                    continue
                if member.size > MAX_FILE_BYTES:
                    raise GroundTruthFormatError(f"{member.name} is larger than {MAX_FILE_BYTES} bytes")
                handle = archive.extractfile(member)
                if handle is not None:
                    with handle:
                        yield member.name, handle.read()
        except (EOFError, tarfile.TarError, zlib.error, OSError) as exc:  # a download cut short, a damaged block
            raise GroundTruthFormatError(f"{location} is a truncated or damaged archive ({exc})") from exc


def read_worker_responses(files: Iterable[tuple[str, bytes]]) -> list[WorkerResponse]:
    responses: list[WorkerResponse] = []
    for path, data in files:
        responses.extend(parse_worker_response(path, data))
    return responses
