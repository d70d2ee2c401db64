"""The environment a stage's functions get from ``.chalice/config.json``.

Both the local cloud (which gives its in-process functions exactly this environment) and the commands
(which build a stage's Settings from it) read it; it lives apart from both so that resolving an AWS
stage does not import the local cloud's server, and the server does not import the command layer.
"""

from __future__ import annotations

import json
from pathlib import Path


def stage_environment(project_root: Path, stage: str) -> dict[str, str]:
    """The environment variables Chalice gives the functions of ``stage`` (top level, then stage)."""
    config = json.loads((project_root / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return {k: str(v) for k, v in env.items()}
