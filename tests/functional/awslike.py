"""Kept only for ``test_pipeline_services.py`` (being rewritten elsewhere): import ``tests.helpers.awslike``.

Delete this module once that file imports the helper directly.
"""

from tests.helpers.awslike import BROKEN, install, set_status

__all__ = ["BROKEN", "install", "set_status"]
