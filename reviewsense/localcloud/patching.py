"""One way to patch moto: replace class attributes, remember what was there, put it back exactly.

The local cloud changes moto in five places, each a ``Patches`` of its own: ``extensions.py`` (Lambda
invoke, EventBridge targets, ``aws-sdk:*`` task results), ``strict.py`` (request validation),
``sfnerrors.py`` (the error names of failed Step Functions tasks), ``sqspoller.py`` (moto's own SQS ->
Lambda delivery off) and ``sagemaker/patches.py`` (SageMaker compute). All install on start and uninstall
on stop, tests install and uninstall them in-process many times, and an uninstall that left a patched
method behind (or restored an inherited method as an own attribute) would leak into every later test.
``Patches`` keeps that bookkeeping in one place: it records the original of each (class, attribute) it
replaces, including "there was none", installs at most once, and restores exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_MISSING = object()


class Patches:
    """A set of attribute replacements on classes, applied together and undone together."""

    def __init__(self) -> None:
        self._originals: dict[tuple[type, str], Any] = {}
        self._lock = threading.RLock()
        self._installed = False

    @property
    def installed(self) -> bool:
        return self._installed

    def install(self, apply: Callable[[Patches], None]) -> bool:
        """Run ``apply`` (which calls ``replace``) unless already installed; True when it ran.

        If ``apply`` raises, whatever it had replaced is restored before the error propagates.
        """
        with self._lock:
            if self._installed:
                return False
            try:
                apply(self)
            except BaseException:
                self._restore()
                raise
            self._installed = True
            return True

    def replace(self, owner: type, attribute: str, value: Any) -> None:
        """Set ``owner.attribute = value``, remembering the class's own original (or its absence)."""
        with self._lock:
            key = (owner, attribute)
            if key not in self._originals:  # a second replace keeps the first, true original
                self._originals[key] = owner.__dict__.get(attribute, _MISSING)
            setattr(owner, attribute, value)

    def uninstall(self) -> bool:
        """Put every replaced attribute back (deleting those the class did not have); True when it did."""
        with self._lock:
            if not self._installed:
                return False
            self._restore()
            self._installed = False
            return True

    def _restore(self) -> None:
        originals, self._originals = self._originals, {}
        for (owner, attribute), value in reversed(list(originals.items())):
            if value is _MISSING:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, value)
