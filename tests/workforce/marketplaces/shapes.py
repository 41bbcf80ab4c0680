"""What botocore's Stubber leaves unchecked: enums, patterns, maximum lengths and values of a request."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
from botocore.model import Shape

_CLASSES = {"L": r"\w", "N": r"\d", "Z": r"\s"}


def _python_pattern(pattern: str) -> str:
    """The model's Java-style patterns in Python's dialect: ``\\p{L}`` -> ``\\w``, ``\\p{N}`` -> ``\\d``,
    ``\\p{Z}`` -> ``\\s``, any other Unicode class -> any character (looser, never stricter)."""
    return re.sub(r"\\p\{(\w+)\}", lambda m: _CLASSES.get(m.group(1), r"\S\s"), pattern)


def _violations(shape: Shape, value: Any, path: str) -> list[str]:
    found: list[str] = []
    meta = shape.metadata
    if shape.type_name == "structure":
        members = shape.members  # type: ignore[attr-defined]
        for name in getattr(shape, "required_members", []):
            if name not in value:
                found.append(f"{path}.{name} is required")
        for name, member_value in value.items():
            if name not in members:
                found.append(f"{path}.{name} is not a member")
            else:
                found += _violations(members[name], member_value, f"{path}.{name}")
    elif shape.type_name == "list":
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{path} has more than {meta['max']} entries")
        for index, entry in enumerate(value):
            found += _violations(shape.member, entry, f"{path}[{index}]")  # type: ignore[attr-defined]
    elif shape.type_name == "string":
        if shape.enum and value not in shape.enum:
            found.append(f"{path}={value!r} is not one of {shape.enum}")
        if "pattern" in meta and not re.fullmatch(_python_pattern(meta["pattern"]), value):
            found.append(f"{path}={value!r} does not match {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{path} is longer than {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            found.append(f"{path} is shorter than {meta['min']}")
    elif shape.type_name in ("integer", "long"):
        if "max" in meta and value > meta["max"]:
            found.append(f"{path}={value} is above {meta['max']}")
        if "min" in meta and value < meta["min"]:
            found.append(f"{path}={value} is below {meta['min']}")
    return found


def request_violations(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    model = botocore.session.get_session().get_service_model(service)
    return _violations(model.operation_model(operation).input_shape, params, operation)
