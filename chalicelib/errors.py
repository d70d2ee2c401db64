"""The one error hierarchy of ReviewSense.

Retryable errors (throttling, a dependency briefly down) are separated from terminal ones (bad
input, a missing resource). Their class names are a contract: Step Functions ``Retry``/``Catch``
blocks match them by name, and a test checks every ``ErrorEquals`` in ``statemachines/`` exists here.
"""

from __future__ import annotations


class ReviewSenseError(Exception):
    """Base class of every error this application raises on purpose."""


class RetryableError(ReviewSenseError):
    """A transient failure: the same call may succeed later (Lambda/Step Functions retry it)."""


class TerminalError(ReviewSenseError):
    """A failure that retrying cannot fix."""


class DependencyUnavailableError(RetryableError):
    """An AWS dependency answered with throttling or a 5xx error."""


class EndpointBusyError(RetryableError):
    """The endpoint is being created, updated or deleted: a new deployment must wait for it."""


class ResourceNotFoundError(TerminalError):
    """The AWS resource named in a call does not exist (or is not visible to this account)."""


class AlreadyExistsError(TerminalError):
    """A resource with this name exists already (a create that was retried, or a duplicate trigger)."""
