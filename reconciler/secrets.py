"""Secret lookup by environment-variable name, and masking of every value looked up.

Secrets are never stored: the YAML names a variable, this module reads it when a
provider needs it and remembers the *value* only to mask it wherever text leaves
the process (output, logs, plan files, journal rows, exception messages).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from reconciler.errors import ConfigError, Problem
from reconciler.model import Location

MASK = "***"
SHORT_SECRET = 4
"""Secrets shorter than this are masked as whole tokens only (bounded by anything
but a letter or digit): masking every "ab" inside longer words would garble the
output while hiding nothing, and a secret that short never hides inside a word
when it is printed on its own, in a URL, a header or a JSON string."""

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#@\"'<>]+)@")
"""`scheme://user:password@` or `scheme://token@` in any URL, registered or not."""


_AUTHORITY_END = re.compile(r"[\s/?#\"'<>]")


def _has_userinfo(value: str) -> bool:
    """Whether any `://` in the text is followed by an `@` before its host ends.

    The userinfo regex costs ~0.1 ms on a journaled action (emails hold `@`, URLs
    `://`); this scan finds the rare text that has userinfo in a few microseconds.
    """
    start = value.find("://")
    while start != -1:
        begin = start + 3
        ends = _AUTHORITY_END.search(value, begin)
        if "@" in value[begin:ends.start() if ends else len(value)]:
            return True
        start = value.find("://", begin)
    return False


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    kept = f"{user}:" if colon else ""
    return f"{match.group('scheme')}{kept}{MASK}@"


class Redactor:
    """Masks every registered secret value (and its URL-encoded forms), and the
    userinfo of every URL, in text that leaves the process.

    Any length is masked: values of `SHORT_SECRET` characters or more wherever they
    appear, shorter ones where they stand as a token of their own.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._frozen: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        if not value:
            return
        with self._lock:
            self._values.update({value, quote(value, safe=""), quote_plus(value)})
            ordered = sorted(self._values, key=len, reverse=True)
            self._frozen = tuple(ordered)  # before the pattern: readers take the pattern first
            self._pattern = re.compile("|".join(_alternative(v) for v in ordered))

    def register_url(self, url: str) -> None:
        """Registers the password (or the lone token) in a URL's userinfo, if any."""
        match = _USERINFO.match(url.strip())
        if match is None:
            return
        user, colon, password = match.group("userinfo").partition(":")
        secret = password if colon else user
        for form in {secret, unquote(secret)}:
            self.register(form)

    def text(self, value: str) -> str:
        if "@" in value and _has_userinfo(value):
            value = _USERINFO.sub(_mask_userinfo, value)
        pattern = self._pattern
        if pattern is None:
            return value
        # Most text holds no secret: a substring test per value (C speed) skips the
        # regex, which costs more than the request it journals at hundreds of calls/s.
        values = self._frozen
        if not any(secret in value for secret in values):
            return value
        return pattern.sub(MASK, value)

    def data(self, value: Any) -> Any:
        """Masks secrets anywhere inside JSON-like data."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _alternative(value: str) -> str:
    escaped = re.escape(value)
    if len(value) >= SHORT_SECRET:
        return escaped
    return f"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"


REDACTOR = Redactor()
"""Process-wide: a secret looked up anywhere is masked everywhere."""


class RedactingFilter(logging.Filter):
    """Masks secrets in every log record, whatever logger produced it."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor.text(record.getMessage())
        record.args = None
        # A traceback (a library's `log.exception`) quotes exception messages, which
        # may hold a URL with its query key: format it here, masked, so the handler's
        # formatter uses this text instead of formatting the raw exception itself.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.text(record.stack_info)
        return True


class Secrets:
    """Reads secrets from the environment (or a sandbox overlay) by variable name."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        overlay: Mapping[str, str] | None = None,
        redactor: Redactor = REDACTOR,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._overlay = dict(overlay or {})
        self._redactor = redactor

    def with_overlay(self, overlay: Mapping[str, str]) -> Secrets:
        return Secrets(self._environ, {**self._overlay, **overlay}, self._redactor)

    def get(self, variable: str, *, where: Location | None = None, secret: bool = True) -> str:
        value = self._overlay.get(variable)
        if value is None:
            value = self._environ.get(variable)
        if value is None or value == "":
            raise ConfigError(
                [
                    Problem(
                        where,
                        f"environment variable {variable} is not set (it should hold "
                        f"{'a secret' if secret else 'a setting'} for this provider)",
                    )
                ]
            )
        if secret:
            self._redactor.register(value)
        return value

    def optional(self, variable: str | None, default: str) -> str:
        if variable is None:
            return default
        return self._overlay.get(variable) or self._environ.get(variable) or default
