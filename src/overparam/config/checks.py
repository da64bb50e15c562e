"""Config checks: one-line config errors and the value checks that classes declare beside their keys (`CHECKS`).

A check is a function (key, value) -> None that raises `ConfigError` naming the key, the value and what is
allowed, so a bad value stops a command in one line before any work starts.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

Check = Callable[[str, Any], None]


class ConfigError(ValueError):
    """A config value outside what is allowed; its message is one line."""


def fail(key: str, value, allowed: str):
    raise ConfigError(f"{key}={show(value)}: {allowed}")


def show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def flatten(config: dict, prefix: str = "") -> dict:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; the `hydra` node is left out."""
    flat = {}
    for key, value in config.items():
        if key == "hydra":
            continue
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def suggest(key: str, candidates) -> str:
    """` (did you mean X?)` for the nearest candidate key, or ``."""
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    if not close and "." in key:
        group, leaf = key.rsplit(".", 1)
        leaves = [c.rsplit(".", 1)[-1] for c in candidates if c.startswith(group + ".")]
        close = [f"{group}.{match}" for match in difflib.get_close_matches(leaf, leaves, n=1)]
    return f" (did you mean {close[0]}?)" if close else ""


# ----- checks: each returns a function (key, value) -> None that raises ConfigError ---------------------------


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _range_text(minimum=None, maximum=None, exclusive_minimum=False, below=None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    if below is not None:
        parts.append(f"< {below}")
    return " " + " and ".join(parts) if parts else ""


def allowed(check: Check) -> str:
    """What a check allows, in words (the configuration reference prints it)."""
    return getattr(check, "allowed", "")


def _described(check: Check, words: str) -> Check:
    check.allowed = words
    return check


def integer(minimum=None, maximum=None) -> Check:
    words = f"an integer{_range_text(minimum, maximum)}"

    def check(key, value):
        if not is_int(value):
            fail(key, value, f"must be {words}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            fail(key, value, f"must be {words}")
    return _described(check, words)


def number(minimum=None, maximum=None, exclusive_minimum=False, below=None) -> Check:
    words = f"a number{_range_text(minimum, maximum, exclusive_minimum, below)}"

    def check(key, value):
        text = f"must be {words}"
        if not is_number(value):
            fail(key, value, text)
        if minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)):
            fail(key, value, text)
        if (maximum is not None and value > maximum) or (below is not None and value >= below):
            fail(key, value, text)
    return _described(check, words)


def choice(*options) -> Check:
    words = f"one of {', '.join(map(str, options))}"

    def check(key, value):
        if value not in options:
            fail(key, value, f"must be {words}")
    return _described(check, words)


def boolean(key, value) -> None:
    if not isinstance(value, bool):
        fail(key, value, "must be true or false")


boolean.allowed = "true or false"


def text(key, value) -> None:
    if not (isinstance(value, str) and value):
        fail(key, value, "must be a non-empty name")


text.allowed = "a non-empty name"


def optional(check: Check) -> Check:
    """`check`, or null."""
    def checked(key, value):
        if value is not None:
            check(key, value)
    return _described(checked, f"{allowed(check)} or null" if allowed(check) else "")
