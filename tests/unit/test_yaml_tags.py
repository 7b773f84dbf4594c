"""The loader's shortcut for plain strings answers exactly what PyYAML's resolver does."""

from __future__ import annotations

import itertools
import string
from typing import Any

import yaml

from reconciler.config.yamlsource import _PLAIN_STR_SHORTCUT, _DocumentBuilder

SCALARS = ["", "user", "name", "null", "Null", "~", "yes", "No", "on", "OFF", "true", "False",
           "1", "-1", "+2", ".5", ".inf", "-.INF", ".nan", "2024-01-01", "2024-01-01 10:00:00",
           "<<", "=", "alice@example.com", "reviews-plus", "0x1F", "0o17", "1_000", "1:20",
           "café", "中文", " x", "n", "y", "Y", *string.printable]


class Event:
    def __init__(self, value: str, implicit: tuple[bool, bool]) -> None:
        self.value, self.implicit, self.tag = value, implicit, None


def test_the_shortcut_agrees_with_the_resolver_on_every_first_character_and_style():
    assert _PLAIN_STR_SHORTCUT, "the shortcut switched itself off: PyYAML's resolver changed"
    builder: Any = _DocumentBuilder("f.yaml", iter([]))
    resolver = yaml.resolver.Resolver()
    styles = list(itertools.product([True, False], repeat=2))
    for value, implicit in itertools.product(SCALARS, styles):
        expected = resolver.resolve(yaml.ScalarNode, value, implicit)
        assert builder._tag(Event(value, implicit)) == expected, (value, implicit)
