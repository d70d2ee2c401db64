"""Does the code shipped to a SageMaker container find everything it imports there?

A job runs in a framework image (``chalicelib.images``) plus what the container installs from the
shipped requirements file. Nothing on a workstation shows a missing package: the local virtualenv has
everything. This module answers the question statically, offline:

* ``read_manifest`` reads ``training/images/<repository>_<tag>.txt`` (the packages the image ships, with
  their versions, recorded from the image's published lock file or Dockerfile);
* ``read_requirements`` reads a shipped, exactly pinned requirements file;
* ``top_level_imports`` AST-scans a module for every absolute import (module level and inside
  functions) plus the imports pandas makes on the code's behalf (``to_parquet`` needs pyarrow);
* ``missing_imports`` resolves each import to its distribution (through the local environment's
  ``packages_distributions``) and reports those neither the image nor the requirements provide;
* ``requirement_conflicts`` and ``python_conflicts`` report shipped pins that would replace a package
  of the image or do not support the image's Python.

The local cloud reuses ``read_manifest`` to run jobs with only what their container would have
(``reviewsense.localcloud.sagemaker.containers``).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYTHON = "python"
#: Attribute calls that make pandas import another distribution for the caller.
IMPLICIT_IMPORTS: dict[str, str] = {"to_parquet": "pyarrow", "read_parquet": "pyarrow"}


def normalize(name: str) -> str:
    """PEP 503 name: ``PyYAML`` -> ``pyyaml``, ``scikit_learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_manifest(path: Path) -> dict[str, str | None]:
    """Package (normalized) -> version (None: shipped unpinned); ``python`` is the interpreter."""
    packages: dict[str, str | None] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        packages[normalize(name.strip())] = version.strip() or None
    if PYTHON not in packages:
        raise ValueError(f"{path}: no python==<version> line")
    return packages


def read_requirements(path: Path) -> dict[str, str]:
    """Package (normalized) -> pinned version; every line must pin one release exactly (``==``)."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise ValueError(f"{path}:{number}: options and includes are not shipped: {line!r}")
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            raise ValueError(f"{path}:{number}: pin one version exactly (name==X.Y.Z): {line!r}")
        pins[normalize(requirement.name)] = specs[0].version
    return pins


@dataclass(frozen=True)
class Import:
    """One import statement (or implicit import) in a scanned file."""

    path: Path
    line: int
    module: str  # the top-level module name (``sklearn`` for ``from sklearn.linear_model import ...``)


@dataclass(frozen=True)
class Missing:
    """An import that neither the image nor the shipped requirements provide."""

    where: Import
    distribution: str | None  # None: no installed distribution provides the module here either

    def __str__(self) -> str:
        what = self.distribution or "no known distribution"
        return f"{self.where.path}:{self.where.line}: import {self.where.module} ({what})"


def top_level_imports(path: Path) -> list[Import]:
    """Every absolute import in ``path``, wherever it occurs, plus pandas' implicit ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(path, node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(Import(path, node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Attribute) and node.attr in IMPLICIT_IMPORTS:
            found.append(Import(path, node.lineno, IMPLICIT_IMPORTS[node.attr]))
    return found


@lru_cache(maxsize=1)
def _module_distributions() -> dict[str, tuple[str, ...]]:
    return {module: tuple(dists) for module, dists in metadata.packages_distributions().items()}


def distribution_of(module: str) -> str | None:
    """The (normalized) distribution that provides top-level ``module`` in this environment."""
    dists = _module_distributions().get(module)
    if dists:
        return normalize(dists[0])
    try:  # a distribution whose name is its module (pyarrow) but not importable under that name here
        return normalize(metadata.distribution(module).metadata["Name"])
    except metadata.PackageNotFoundError:
        return None


def missing_imports(
    files: Iterable[Path],
    provided: Iterable[str],
    first_party: Iterable[str] = (),
    local_only: Mapping[str, str] | None = None,
) -> list[Missing]:
    """Imports of ``files`` that resolve to no distribution in ``provided`` (normalized names).

    The standard library (``sys.stdlib_module_names``), ``__future__``, the ``first_party`` top-level
    packages (shipped as source next to the code) and ``local_only`` modules (module -> why it is never
    reached in a container) are not looked up.
    """
    have = {normalize(p) for p in provided}
    own = set(first_party)
    skip = set(local_only or {})
    missing: list[Missing] = []
    for path in files:
        for found in top_level_imports(path):
            module = found.module
            if module in sys.stdlib_module_names or module == "__future__" or module in own or module in skip:
                continue
            dist = distribution_of(module)
            if dist is None or dist not in have:
                missing.append(Missing(found, dist))
    return missing


def _container_environment(python: str) -> dict[str, str]:
    env: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    env.update(
        {
            "python_version": ".".join(python.split(".")[:2]),
            "python_full_version": python if python.count(".") == 2 else f"{python}.0",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "os_name": "posix",
            "extra": "",
        }
    )
    return env


def _requires(dist: str, python: str, extras: Iterable[str] = ()) -> list[Requirement]:
    """The requirements of installed ``dist`` that apply in the container (with ``extras`` active)."""
    out: list[Requirement] = []
    for raw in metadata.requires(dist) or []:
        requirement = Requirement(raw)
        if requirement.marker is None:
            out.append(requirement)
            continue
        for extra in ("", *extras):
            env = _container_environment(python)
            env["extra"] = extra
            if requirement.marker.evaluate(env):
                out.append(requirement)
                break
    return out


def requirement_conflicts(
    pins: Mapping[str, str],
    manifest: Mapping[str, str | None],
    extras: Mapping[str, Iterable[str]],
    upgrades: Iterable[str] = (),
) -> list[str]:
    """Where installing ``pins`` into the image would replace or break one of the image's packages.

    Checks, from the installed metadata of each pinned distribution (the workstation installs the same
    pins), that its requirements, with the given ``extras`` per distribution (``{"transformers":
    ["torch"]}`` adds ``torch>=2.6``), accept the version the image ships. A pin of a package the image
    also ships at another version is reported unless it is one of the deliberate ``upgrades``.
    """
    python = manifest[PYTHON] or ""
    allowed = {normalize(u) for u in upgrades}
    problems: list[str] = []
    for name, version in pins.items():
        shipped_self = manifest.get(name)
        if shipped_self is not None and Version(shipped_self) != Version(version) and name not in allowed:
            problems.append(f"{name}=={version} would replace the image's {name}=={shipped_self}")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}=={version} is not installed here, so its requirements cannot be checked")
            continue
        if Version(installed) != Version(version):
            problems.append(f"{name}: pinned {version} but {installed} is installed here")
        for requirement in _requires(name, python, extras.get(name, ())):
            dep = normalize(requirement.name)
            shipped = manifest.get(dep)
            if dep in pins or shipped is None:  # our own pin, or not in the image / unpinned there
                continue
            if not requirement.specifier.contains(shipped, prereleases=True):
                problems.append(f"{name}=={version} requires {requirement}, the image has {dep}=={shipped}")
    return problems


def python_conflicts(pins: Mapping[str, str], python: str) -> list[str]:
    """Pinned distributions whose ``Requires-Python`` excludes the image's interpreter."""
    full = python if python.count(".") == 2 else f"{python}.0"
    problems = []
    for name, version in pins.items():
        spec = metadata.metadata(name)["Requires-Python"]
        if spec and not SpecifierSet(spec).contains(full, prereleases=True):
            problems.append(f"{name}=={version} requires Python {spec}, the image has {python}")
    return problems
