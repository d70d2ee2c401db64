"""The Lambda package stays light: importing ``app`` loads no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.paths import ROOT

HEAVY = (
    "torch",
    "transformers",
    "sagemaker",
    "pandas",
    "awswrangler",
    "pyarrow",
    "duckdb",
    "numpy",
    "sklearn",
)


def test_import_app_loads_no_heavy_module() -> None:
    code = (
        "import sys, json; import app; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_lambda_requirements_exclude_heavy_packages() -> None:
    names = [
        line.split("==")[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert names, "requirements.txt lists the Lambda runtime dependencies"
    assert not set(names) & {"torch", "transformers", "sagemaker", "pandas", "awswrangler"}


def test_training_code_is_never_imported_by_lambda_code() -> None:
    for path in [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]:
        text = path.read_text()
        assert "import training" not in text and "from training" not in text, path
