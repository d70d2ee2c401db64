"""A framework container's import rule, installed into a local job's Python as ``sitecustomize``.

Locally every job runs with the workstation's virtualenv, which has everything; in SageMaker the job
only finds what its image ships plus what the container installed. ``containers.py`` copies this file
as ``sitecustomize.py`` into a per-job folder at the front of ``PYTHONPATH`` and writes the job's rule
to the JSON file named by ``REVIEWSENSE_IMAGE_GUARD``:

    {"image": "pytorch:2.13.0-cpu-amzn2023-sagemaker",
     "modules": [...],   top-level modules of the image's distributions and of what was installed
     "roots": [...],     folders holding the job's own code (the source dir, the processing code input)
     "ledger": "..."}    file listing what a successful ``pip install -r`` inside the job added

A top-level import that is not the standard library, not in ``modules`` and not found under ``roots``
raises ``ModuleNotFoundError`` exactly as in the container. A processing job installs its requirements
itself (``training.bootstrap`` runs pip): in that pip process this module records, when pip exits 0,
the distributions of the requirement files to the ledger, and the job's own process reads the ledger
before refusing an import. pip itself runs offline there (``PIP_NO_INDEX``, no configuration files),
so it can only succeed for versions the local environment already has, and never changes it.

Standard library only: it runs before anything else in the job's interpreter.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import re
import site
import sys
import sysconfig
import types
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

CONFIG_ENV = "REVIEWSENSE_IMAGE_GUARD"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path: Path) -> list[str]:
    """The distribution names a requirements file asks for (options and comments skipped)."""
    names = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        match = _NAME.match(line)
        if line and not line.startswith("-") and match:
            names.append(normalize(match.group(1)))
    return names


def _requires(name: str) -> list[str]:
    try:
        raw = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    out = []
    for entry in raw:
        requirement, _, marker = entry.partition(";")
        match = _NAME.match(requirement)
        if match and "extra" not in marker:  # optional extras are not installed
            out.append(normalize(match.group(1)))
    return out


def closure(names: Iterable[str]) -> set[str]:
    """The distributions and what they require, recursively, as installed here."""
    seen: set[str] = set()
    todo = [normalize(n) for n in names]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_requires(name))
    return seen


def modules_of(distributions: Iterable[str]) -> set[str]:
    """Top-level module names the given installed distributions provide."""
    wanted = {normalize(d) for d in distributions}
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(normalize(d) in wanted for d in dists)
    }


def _inside(path: str, roots: Sequence[str]) -> bool:
    resolved = os.path.realpath(path)
    return any(resolved == root or resolved.startswith(root + os.sep) for root in roots)


def _python_paths() -> tuple[list[str], list[str]]:
    """(the interpreter's own library folders, the site-packages folders)."""
    paths = sysconfig.get_paths()
    own = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if k in paths}
    installed = {
        os.path.realpath(p)
        for p in (*site.getsitepackages(), paths.get("purelib", ""), paths.get("platlib", ""))
        if p
    }
    return sorted(own), sorted(installed)


class ImageGuard(importlib.abc.MetaPathFinder):
    """Refuses top-level imports of distributions the container does not have."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.image = str(config.get("image", "the image"))
        self.modules = set(config.get("modules", ()))
        self.roots = [os.path.realpath(r) for r in config.get("roots", ())]
        self.ledger = Path(str(config["ledger"])) if config.get("ledger") else None
        self._ledger_seen: list[str] = []
        self._stdlib, self._site = _python_paths()

    def _refresh_from_ledger(self) -> None:
        if self.ledger is None or not self.ledger.is_file():
            return
        names = [n for n in self.ledger.read_text(encoding="utf-8").split() if n]
        if names != self._ledger_seen:
            self._ledger_seen = names
            self.modules |= modules_of(closure(names))

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if self._always_allowed(fullname, path):
            return None
        spec = self._spec_elsewhere(fullname, target)
        if spec is None or self._own_or_interpreter(spec):
            return None  # not installed anywhere (the usual error), or not a distribution
        self._refresh_from_ledger()
        if fullname in self.modules or self._inside_allowed_package(spec):
            return None
        raise ModuleNotFoundError(
            f"No module named '{fullname}' (the local cloud runs this job as {self.image}, which does not "
            "have it, and nothing installed it)",
            name=fullname,
        )

    def _inside_allowed_package(self, spec: importlib.machinery.ModuleSpec) -> bool:
        """A module file inside an allowed package's folder, imported by its bare name.

        (``onnxruntime.transformers`` puts its own folder on ``sys.path`` and imports ``fusion_utils``:
        part of onnxruntime, which the image ships.)
        """
        origin = os.path.realpath(spec.origin or "")
        for site_dir in self._site:
            if _inside(origin, [site_dir]):
                parts = os.path.relpath(origin, site_dir).split(os.sep)
                return len(parts) > 1 and parts[0] in self.modules
        return False

    def _always_allowed(self, fullname: str, path: Sequence[str] | None) -> bool:
        """Submodules, the standard library and the image's own distributions pass unchecked."""
        if path is not None or "." in fullname:
            return True
        if fullname in sys.stdlib_module_names or fullname in sys.builtin_module_names:
            return True
        return fullname in self.modules or fullname == "sitecustomize"

    def _spec_elsewhere(
        self, fullname: str, target: types.ModuleType | None
    ) -> importlib.machinery.ModuleSpec | None:
        """What the other finders would import for ``fullname``."""
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, None, target)
                if spec is not None:
                    return spec
        return None

    def _own_or_interpreter(self, spec: importlib.machinery.ModuleSpec) -> bool:
        """The job's own code, or an interpreter module missing from ``sys.stdlib_module_names``.

        (Such as ``_sysconfigdata_*``: under the interpreter's library folders, outside site-packages.)
        """
        locations = [spec.origin] if spec.origin and spec.origin not in ("built-in", "frozen") else []
        locations += list(spec.submodule_search_locations or [])
        if not locations:
            return False
        if all(_inside(loc, self.roots) for loc in locations):
            return True
        return all(_inside(loc, self._stdlib) and not _inside(loc, self._site) for loc in locations)


def _record_pip_install(ledger: Path) -> None:
    """In a ``python -m pip install -r FILE`` process: on exit 0, add FILE's distributions to ``ledger``."""
    argv = list(getattr(sys, "orig_argv", []))
    try:
        at = argv.index("-m")
    except ValueError:
        return
    if argv[at + 1 : at + 3] != ["pip", "install"]:
        return
    files = [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in ("-r", "--requirement")]
    if not files:
        return
    original = sys.exit

    def exit_(status: str | int | None = None) -> NoReturn:
        if status in (None, 0):
            names = [name for f in files if f.is_file() for name in requirement_names(f)]
            with ledger.open("a", encoding="utf-8") as out:
                out.write("".join(f"{n}\n" for n in names))
        original(status)

    sys.exit = exit_


def install(config_path: str) -> ImageGuard:
    config: dict[str, Any] = json.loads(Path(config_path).read_text(encoding="utf-8"))
    guard = ImageGuard(config)
    sys.meta_path.insert(0, guard)
    if guard.ledger is not None:
        _record_pip_install(guard.ledger)
    return guard


if __name__ == "sitecustomize" and os.environ.get(CONFIG_ENV):
    install(os.environ[CONFIG_ENV])
