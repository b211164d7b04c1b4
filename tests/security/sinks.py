"""Every place a secret could leak to during a test, searched in one go.

A :class:`Sinks` holds named sources of text; each is read when the check runs, so
a source can be registered before the traffic it will collect. The logs (every
logger, at DEBUG) and the HTTP answers are registered here; spans and audit records
can be added the same way (``sinks.add("spans", lambda: ...)``) where they exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote

import pytest

Source = Callable[[], Iterable[str]]


class Sinks:
    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}

    def add(self, name: str, source: Source) -> None:
        self._sources[name] = source

    def texts(self) -> Iterator[tuple[str, str]]:
        for name, source in self._sources.items():
            for text in source():
                yield name, text

    def assert_no_secret(self, secrets: Iterable[str], *, expect: Iterable[str] = ()) -> None:
        """No secret (as is, or percent-encoded) in any sink; each of ``expect`` saw text."""
        forms = {form: secret for secret in secrets for form in (secret, quote(secret, safe=""))}
        seen: dict[str, int] = {}
        leaks: list[str] = []
        for name, text in self.texts():
            seen[name] = seen.get(name, 0) + 1
            leaks += [
                f"{name}: {secret!r} in {text[max(0, text.find(f) - 300) : text.find(f) + 50]!r}"
                for f, secret in forms.items()
                if f in text
            ]
        assert leaks == [], "\n".join(leaks)
        for name in expect:
            assert seen.get(name), f"the sink {name!r} collected nothing: the check would be empty"


def log_texts(caplog: pytest.LogCaptureFixture) -> Source:
    """Each captured record as formatted, with its arguments and extra attributes."""

    def read() -> Iterator[str]:
        for record in caplog.records:
            yield logging.Formatter().format(record)
            yield repr(record.__dict__)

    return read
