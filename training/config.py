"""Turn a config dataclass into a SageMaker-compatible argument parser.

SageMaker script mode passes hyperparameters as ``--key value`` pairs (never bare flags) and may add
arguments a script does not know, so every script parses with ``parse_known_args`` and reads booleans as
``true/false``. A bare boolean flag (``--json``) is also accepted for people typing commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def str2bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")


def env(name: str, default: str) -> str:
    """Read a SageMaker environment variable with a local fallback (evaluated when a config is built)."""
    return os.environ.get(name, default)


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """Return (type, optional) for ``X`` or ``X | None``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _optional(convert: Any) -> Any:
    def parse(value: str) -> Any:
        if value.strip().lower() in {"none", "null", ""}:
            return None
        return convert(value)

    return parse


def build_parser(cls: type[Any], description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description or (cls.__doc__ or "").strip(),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        typ, optional = _base_type(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        names = [f"--{f.name.replace('_', '-')}"]
        if "_" in f.name:
            names.append(f"--{f.name}")
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": f.metadata.get("help", " ")}
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs["required"] = True
        if typ is bool:
            kwargs.update(type=str2bool, nargs="?", const=True, metavar="true|false")
        elif typ in (int, float, str):
            kwargs["type"] = _optional(typ) if optional else typ
        else:
            raise TypeError(f"unsupported config field type {typ!r} for {f.name}")
        parser.add_argument(*names, **kwargs)
    return parser


def parse_config(cls: type[T], argv: Sequence[str] | None = None) -> T:
    """Parse argv (``None`` = ``sys.argv[1:]``) into ``cls``; unknown arguments are logged and ignored."""
    parser = build_parser(cls)
    args, unknown = parser.parse_known_args(None if argv is None else list(argv))
    if unknown:
        log.info("ignoring unknown arguments: %s", " ".join(unknown))
    return cls(**vars(args))


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr in a format that keeps metric lines greppable (``key: value``)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    else:
        root.setLevel(level)
