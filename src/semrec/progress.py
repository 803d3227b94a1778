"""Progress reporting without printing from library code.

Library code wraps long work in ``with progress("Training", total=n) as advance: ...``.
By default nothing is shown; the CLI installs a Rich reporter with :func:`reporting_to`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Protocol

Advance = Callable[..., None]


class Reporter(Protocol):
    def task(self, description: str, total: int | None) -> AbstractContextManager[Advance]: ...


_reporter: ContextVar[Reporter | None] = ContextVar("semrec_progress_reporter", default=None)


def _ignore(*args: object, **kwargs: object) -> None:
    return None


def progress(description: str, total: int | None = None) -> AbstractContextManager[Advance]:
    """Context manager yielding ``advance(steps=1, **fields)`` for one unit of work."""
    reporter = _reporter.get()
    return nullcontext(_ignore) if reporter is None else reporter.task(description, total)


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
