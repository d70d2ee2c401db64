"""The errors an operator sees from a ``reviewsense`` command.

Helpers (target resolution, lake, local-cloud control, pipeline operations) raise these instead of
exiting, so they stay usable from tests, benchmarks and other commands; only the argparse front end
(``reviewsense.cli.main``) turns one into a message on stderr and the process's exit status.
"""

from __future__ import annotations


class OperatorError(Exception):
    """A failure the operator can act on; ``exit_code`` is the command's exit status."""

    exit_code = 1


class LocalCloudNotRunningError(OperatorError):
    """No local cloud answers at the advertised endpoint (or one did not start)."""

    exit_code = 2


class StageNotDeployedError(OperatorError):
    """The stage's stack is not deployed in this account and region."""

    exit_code = 2


class LocalCloudNotStoppedError(OperatorError):
    """A running local cloud did not stop when asked to."""


class NoPipelineRunError(OperatorError):
    """The training pipeline has never run, so there is no latest run to show or wait for."""
