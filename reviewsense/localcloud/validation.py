"""Validate a request's parameters against botocore's service model, the way AWS does server-side.

moto accepts almost anything, and botocore's client-side validator checks only types and required
members. AWS itself also enforces each member's ``pattern`` (Java regex syntax, see
:mod:`reviewsense.localcloud.javaregex`), ``min``/``max`` lengths of strings, lists and maps,
numeric ranges and enum value sets, and answers a violation with ``ValidationException`` and a
message such as::

    1 validation error detected: Value 'rs-...-promoted-20261129093816' at 'endpointConfigName'
    failed to satisfy constraint: Member must have length less than or equal to 63

This module is the pure part of the strict local cloud: given (service, operation, params) it
returns those violations, in AWS's words (member paths in lowerCamelCase, list items as
``<list>.<n>.member``, scalar list items and map entries reported on the collection with every
constraint of the item's shape). :mod:`reviewsense.localcloud.strict` feeds it every request that
reaches the emulator; tests call it directly on the requests the code builds.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationNotFoundError, ServiceModel, Shape, StructureShape

from reviewsense.localcloud.javaregex import java_matches

__all__ = [
    "RequestValidationError",
    "Violation",
    "check",
    "operation_model",
    "scalar_constraints",
    "service_model",
    "validate",
    "validation_message",
]


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service`` (its boto3 name: ``sagemaker``, ``lambda``, ``s3`` ...)."""
    return _session().get_service_model(service)


def operation_model(service: str, operation: str) -> Any:
    """The operation's model, or None when the service has no such operation."""
    try:
        return service_model(service).operation_model(operation)
    except OperationNotFoundError:
        return None


@dataclass(frozen=True)
class Violation:
    """One failed constraint: where, the offending value, and AWS's wording of the constraint."""

    path: str
    value: Any
    constraint: str

    def render(self) -> str:
        value = _java_repr(self.value)
        return f"Value {value} at '{self.path}' failed to satisfy constraint: {self.constraint}"


@dataclass
class RequestValidationError(Exception):
    """A request AWS would reject before doing anything (HTTP 400)."""

    service: str
    operation: str
    violations: list[Violation] = field(default_factory=list)
    code: str = "ValidationException"
    message: str = ""

    def __post_init__(self) -> None:
        if not self.message:
            self.message = validation_message(self.violations)
        super().__init__(self.message)


def validation_message(violations: list[Violation]) -> str:
    n = len(violations)
    head = f"{n} validation error{'s' if n != 1 else ''} detected: "
    return head + "; ".join(v.render() for v in violations)


def _java_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, list):
        return "[" + ", ".join(_java_scalar(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_java_scalar(v)}" for k, v in value.items()) + "}"
    return str(value)


def _java_repr(value: Any) -> str:
    """How Coral quotes a value in a validation message (``null`` bare, everything else quoted)."""
    return "null" if value is None else f"'{_java_scalar(value)}'"


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _join(path: str, name: str) -> str:
    return f"{path}.{_lower_camel(name)}" if path else _lower_camel(name)


def _utf16_length(value: str) -> int:
    """Java's String.length(): UTF-16 code units (what AWS's length constraints count)."""
    return len(value.encode("utf-16-le")) // 2


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def scalar_constraints(shape: Shape) -> list[str]:
    """Every constraint of a scalar shape, worded as AWS words them."""
    meta = shape.metadata
    out: list[str] = []
    kind = shape.type_name
    if kind in ("string", "blob", "list", "map"):
        if "max" in meta:
            out.append(f"Member must have length less than or equal to {_number_text(meta['max'])}")
        if "min" in meta:
            out.append(f"Member must have length greater than or equal to {_number_text(meta['min'])}")
    elif kind in ("integer", "long", "float", "double", "short", "byte"):
        if "max" in meta:
            out.append(f"Member must have value less than or equal to {_number_text(meta['max'])}")
        if "min" in meta:
            out.append(f"Member must have value greater than or equal to {_number_text(meta['min'])}")
    if "pattern" in meta:
        out.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    if "enum" in meta:
        out.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
    return out


_NUMBERS = ("integer", "long", "short", "byte", "float", "double")


class _Validator:
    def __init__(self, wire_names: bool, typed: bool) -> None:
        # JSON bodies arrive keyed by wire names (`jsonName`) and with JSON types; parameters parsed
        # by moto (query, REST) arrive keyed by member names with types already converted.
        self.wire_names = wire_names
        self.typed = typed
        self.violations: list[Violation] = []
        self.type_errors: list[str] = []

    def _key(self, name: str, member: Shape) -> str:
        return str(member.serialization.get("name", name)) if self.wire_names else name

    def value(self, shape: Shape, value: Any, path: str) -> None:
        kind = shape.type_name
        if kind == "structure":
            self.structure(shape, value, path)
        elif kind == "list":
            self.list(shape, value, path)
        elif kind == "map":
            self.map(shape, value, path)
        else:
            if not self.type_ok(shape, value, path):
                return
            failed = self.scalar_failures(shape, value)
            for constraint in failed:
                self.violations.append(Violation(path, value, constraint))

    def type_ok(self, shape: Shape, value: Any, path: str) -> bool:
        if not self.typed:
            return True
        kind = shape.type_name
        ok = {
            "string": lambda v: isinstance(v, str),
            "boolean": lambda v: isinstance(v, bool),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "short": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "byte": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "timestamp": lambda v: isinstance(v, int | float | str | datetime) and not isinstance(v, bool),
            "blob": lambda v: isinstance(v, str | bytes | bytearray),
        }.get(kind)
        if ok is None or ok(value):
            return True
        self.type_errors.append(f"{type(value).__name__} value at '{path}' can not be converted to {kind}")
        return False

    def scalar_failures(self, shape: Shape, value: Any) -> list[str]:
        meta = shape.metadata
        kind = shape.type_name
        failed: list[str] = []
        if kind == "string" and isinstance(value, str):
            length = _utf16_length(value)
            if "max" in meta and length > meta["max"]:
                failed.append(f"Member must have length less than or equal to {meta['max']}")
            if "min" in meta and length < meta["min"]:
                failed.append(f"Member must have length greater than or equal to {meta['min']}")
            if "pattern" in meta and not java_matches(meta["pattern"], value):
                failed.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
            if "enum" in meta and value not in meta["enum"]:
                failed.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
        elif kind == "blob" and isinstance(value, str | bytes | bytearray):
            size = len(value) if not isinstance(value, str) else _base64_length(value)
            if "max" in meta and size > meta["max"]:
                failed.append(f"Member must have length less than or equal to {meta['max']}")
            if "min" in meta and size < meta["min"]:
                failed.append(f"Member must have length greater than or equal to {meta['min']}")
        elif kind in _NUMBERS and isinstance(value, int | float):
            if isinstance(value, float) and math.isnan(value):
                return failed
            if "max" in meta and value > meta["max"]:
                failed.append(f"Member must have value less than or equal to {_number_text(meta['max'])}")
            if "min" in meta and value < meta["min"]:
                failed.append(f"Member must have value greater than or equal to {_number_text(meta['min'])}")
        return failed

    def _length(self, shape: Shape, size: int, value: Any, path: str) -> None:
        meta = shape.metadata
        if "max" in meta and size > meta["max"]:
            self.violations.append(
                Violation(path, value, f"Member must have length less than or equal to {meta['max']}")
            )
        if "min" in meta and size < meta["min"]:
            self.violations.append(
                Violation(path, value, f"Member must have length greater than or equal to {meta['min']}")
            )

    def structure(self, shape: StructureShape, value: Any, path: str) -> None:
        if shape.metadata.get("document"):
            return
        if not isinstance(value, Mapping):
            if self.typed:
                self.type_errors.append(f"{type(value).__name__} value at '{path}' is not a structure")
            return
        for name in shape.required_members:
            member = shape.members[name]
            if value.get(self._key(name, member)) is None:
                self.violations.append(Violation(_join(path, name), None, "Member must not be null"))
        for name, member in shape.members.items():
            key = self._key(name, member)
            if key in value and value[key] is not None:
                self.value(member, value[key], _join(path, name))

    def list(self, shape: ListShape, value: Any, path: str) -> None:
        if not isinstance(value, list | tuple):
            if self.typed:
                self.type_errors.append(f"{type(value).__name__} value at '{path}' is not a list")
            return
        self._length(shape, len(value), list(value), path)
        member = shape.member
        if member.type_name in ("structure", "list", "map"):
            for i, item in enumerate(value, start=1):
                if item is not None:
                    self.value(member, item, f"{path}.{i}.member")
            return
        bad = [
            item
            for item in value
            if item is not None and self.type_ok(member, item, path) and self.scalar_failures(member, item)
        ]
        if bad:
            constraints = ", ".join(scalar_constraints(member))
            constraint = f"Member must satisfy constraint: [{constraints}]"
            self.violations.append(Violation(path, list(value), constraint))

    def map(self, shape: MapShape, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            if self.typed:
                self.type_errors.append(f"{type(value).__name__} value at '{path}' is not a map")
            return
        self._length(shape, len(value), dict(value), path)
        key_shape, value_shape = shape.key, shape.value
        if any(self.scalar_failures(key_shape, k) for k in value):
            constraints = ", ".join(scalar_constraints(key_shape))
            constraint = f"Map keys must satisfy constraint: [{constraints}]"
            self.violations.append(Violation(path, dict(value), constraint))
        if value_shape.type_name in ("structure", "list", "map"):
            for k, item in value.items():
                if item is not None:
                    self.value(value_shape, item, f"{path}.{k}")
            return
        bad = [
            item
            for k, item in value.items()
            if item is not None
            and self.type_ok(value_shape, item, f"{path}.{k}")
            and self.scalar_failures(value_shape, item)
        ]
        if bad:
            constraints = ", ".join(scalar_constraints(value_shape))
            constraint = f"Map value must satisfy constraint: [{constraints}]"
            self.violations.append(Violation(path, dict(value), constraint))


def _base64_length(value: str) -> int:
    try:
        return len(base64.b64decode(value, validate=False))
    except ValueError:
        return len(value)


def validate(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    wire_names: bool = False,
    typed: bool = True,
) -> list[Violation]:
    """Every constraint ``params`` break, in AWS's wording; ``[]`` when AWS would accept them.

    ``typed`` also checks each value's JSON type (a type error raises instead: AWS answers it
    with ``SerializationException`` before any constraint is checked).
    """
    model = operation_model(service, operation)
    if model is None:
        raise ValueError(f"{service} has no operation {operation}")
    shape = model.input_shape
    if shape is None:
        return []
    v = _Validator(wire_names=wire_names, typed=typed)
    v.structure(shape, params, "")
    if v.type_errors:
        raise RequestValidationError(
            service, operation, [], code="SerializationException", message="; ".join(v.type_errors)
        )
    return v.violations


def check(service: str, operation: str, params: Mapping[str, Any], **options: bool) -> None:
    """Raise :class:`RequestValidationError` when AWS would reject ``params``."""
    violations = validate(service, operation, params, **options)
    if violations:
        raise RequestValidationError(service, operation, violations)
