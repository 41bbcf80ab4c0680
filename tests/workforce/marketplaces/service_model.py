"""Check request params against boto3's own service model for what botocore's validator and Stubber skip:
enums, patterns and maximum lengths (and unknown members)."""

from __future__ import annotations

import re
from typing import Any

from botocore.model import Shape


def violations(shape: Shape, value: Any, path: str = "") -> list[str]:
    problems: list[str] = []
    meta = shape.metadata
    if shape.type_name == "structure":
        members = shape.members  # type: ignore[attr-defined]
        problems += [f"{path}.{name}: unknown member" for name in value if name not in members]
        problems += [f"{path}.{name}: required" for name in meta.get("required", []) if name not in value]
        for name, item in value.items():
            if name in members:
                problems += violations(members[name], item, f"{path}.{name}")
    elif shape.type_name == "list":
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: more than {meta['max']} items")
        for i, item in enumerate(value):
            problems += violations(shape.member, item, f"{path}[{i}]")  # type: ignore[attr-defined]
    elif shape.type_name == "string":
        if "enum" in meta and value not in meta["enum"]:
            problems.append(f"{path}: {value!r} not in {meta['enum']}")
        if "pattern" in meta and not re.search(meta["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: longer than {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{path}: shorter than {meta['min']}")
    elif shape.type_name in ("integer", "long"):
        if "max" in meta and value > meta["max"]:
            problems.append(f"{path}: above {meta['max']}")
        if "min" in meta and value < meta["min"]:
            problems.append(f"{path}: below {meta['min']}")
    return problems


def record_params(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every call's operation name and params, captured before Stubber answers, for ``violations``."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def capture(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        seen.append((model.name, dict(params)))

    client.meta.events.register("provide-client-params.mturk.*", capture)
    return seen


def check_all(client: Any, seen: list[tuple[str, dict[str, Any]]]) -> list[str]:
    model = client.meta.service_model
    problems: list[str] = []
    for operation, params in seen:
        problems += violations(model.operation_model(operation).input_shape, params, operation)
    return problems
