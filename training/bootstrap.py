"""Entry point of the pipeline's processing jobs: install the shipped requirements, then run one module.

SageMaker script mode installs ``requirements.txt`` from the source dir before a training job's entry
point, and the PyTorch serving toolkit installs ``code/requirements.txt`` from the model archive, but a
processing job runs its container entry point and nothing else: transformers, which featurize and
evaluate import, is not in the image (``training/images/``). The processing request therefore runs

    python3 -m training.bootstrap training.featurize --input ... --output-dir ...

which does what the training toolkit does (``python -m pip install -r requirements.txt`` from the root
of the code, failing the job with pip's exit code and message when that fails) and then runs the module
as ``__main__`` with the remaining arguments. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = "requirements.txt"
USAGE = "usage: python -m training.bootstrap MODULE [ARG ...]  (installs <code root>/requirements.txt first)"


def install_command(requirements: Path) -> list[str]:
    """The command the SageMaker training toolkit runs for script mode, for the same file."""
    return [sys.executable, "-m", "pip", "install", "--no-cache-dir", "-r", str(requirements)]


def install_requirements(code_root: Path = CODE_ROOT) -> int:
    """Install ``<code_root>/requirements.txt``; return pip's exit code (0 when there is no such file)."""
    requirements = code_root / REQUIREMENTS
    if not requirements.is_file():
        print(f"bootstrap: no {requirements}: nothing to install", file=sys.stderr, flush=True)
        return 0
    command = install_command(requirements)
    print(f"bootstrap: {' '.join(command)}", file=sys.stderr, flush=True)
    return subprocess.call(command, cwd=code_root)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    module, rest = args[0], args[1:]
    status = install_requirements()
    if status != 0:
        print(
            f"bootstrap: InstallRequirementsError: pip exited with {status}; {module} was not run",
            file=sys.stderr,
            flush=True,
        )
        return status
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
