"""The training code as SageMaker receives it: ``sourcedir.tar.gz`` for script mode.

Kept apart from the local compute because the publishing command and the tests build the archive
without starting anything: the same bytes go to S3 locally and on AWS. What goes in (the code, and
``requirements.txt`` at the root for the script-mode install step) is ``reviewsense.codepublish``'s
single list.
"""

from __future__ import annotations

from pathlib import Path

from reviewsense.codepublish import build_sourcedir_archive


def build_sourcedir(project_root: Path) -> bytes:
    """``sourcedir.tar.gz`` for script mode: ``training/``, ``chalicelib/__init__.py`` and ``domain/``,
    and ``requirements.txt`` at the root.

    The bytes are reproducible (sorted entries, zeroed times and owners), so an unchanged tree gives the
    same S3 object. Run it with ``sagemaker_program = "training/train.py"`` (or featurize / evaluate).
    """
    return build_sourcedir_archive(Path(project_root))
