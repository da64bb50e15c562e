"""The config layer: one-line config errors, value checks, and each buildable class's schema for Hydra.

A task or a model is a class whose constructor is its schema: its keyword parameters are the config keys, their
defaults the config's defaults. `register_schemas()` stores that schema in Hydra's ConfigStore (as
`schema/<group>/<config_name>`), and the group's yaml extends it, so a default is written once, in the class.
Checks of what a type cannot say (ranges, choices) are declared beside the class too (`CHECKS`).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Check = Callable[[str, Any], None]
# Packages whose classes carry a `config_group` and a `config_name`: every task and every model.
BUILDABLE_PACKAGES = ("overparam.tasks", "overparam.nets")
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


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


def integer(minimum=None, maximum=None) -> Check:
    def check(key, value):
        text = f"must be an integer{_range_text(minimum, maximum)}"
        if not is_int(value):
            fail(key, value, text)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            fail(key, value, text)
    return check


def number(minimum=None, maximum=None, exclusive_minimum=False, below=None) -> Check:
    def check(key, value):
        text = f"must be a number{_range_text(minimum, maximum, exclusive_minimum, below)}"
        if not is_number(value):
            fail(key, value, text)
        if minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)):
            fail(key, value, text)
        if (maximum is not None and value > maximum) or (below is not None and value >= below):
            fail(key, value, text)
    return check


def choice(*options) -> Check:
    def check(key, value):
        if value not in options:
            fail(key, value, f"must be one of {', '.join(map(str, options))}")
    return check


def boolean(key, value) -> None:
    if not isinstance(value, bool):
        fail(key, value, "must be true or false")


def text(key, value) -> None:
    if not (isinstance(value, str) and value):
        fail(key, value, "must be a non-empty name")


def optional(check: Check) -> Check:
    """`check`, or null."""
    def checked(key, value):
        if value is not None:
            check(key, value)
    return checked


# ----- schemas: a class's constructor as its config -----------------------------------------------------------


def target_path(target) -> str:
    return f"{target.__module__}.{target.__qualname__}"


def parameters(target) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a class's constructor (or a function) that a config sets."""
    function = target.__init__ if inspect.isclass(target) else target
    return {
        name: parameter
        for name, parameter in inspect.signature(function).parameters.items()
        if name != "self" and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and name not in getattr(target, "RUNTIME_ARGUMENTS", ())
    }


def schema(target) -> dict:
    """`{"_target_": path, key: default, ...}` for every config parameter of `target` (`???` where none)."""
    node: dict = {"_target_": target_path(target)}
    for name, parameter in parameters(target).items():
        default = parameter.default
        node[name] = "???" if default is inspect.Parameter.empty else _plain(default)
    return node


def _plain(value):
    """Defaults as OmegaConf stores them: tuples become lists."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def buildable_classes() -> Iterator[type]:
    """Every class in BUILDABLE_PACKAGES that declares its config group and name (its own, not inherited)."""
    seen = set()
    for package_name in BUILDABLE_PACKAGES:
        package = importlib.import_module(package_name)
        modules = [package] + [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}.")
        ]
        for module in modules:
            for value in vars(module).values():
                if inspect.isclass(value) and "config_name" in vars(value) and value not in seen:
                    seen.add(value)
                    yield value


@functools.cache  # the ConfigStore is one per process
def register_schemas() -> None:
    """Store every task's and model's schema in Hydra's ConfigStore, where conf/<group>/*.yaml extend them."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for target in buildable_classes():
        store.store(group=f"schema/{target.config_group}", name=target.config_name, node=schema(target))


def locate(path: str):
    """The class or function a `_target_` names, or a one-line ConfigError."""
    from hydra.utils import get_object

    try:
        return get_object(path)
    except Exception:  # noqa: BLE001 - any import problem is a config problem here
        raise ConfigError(f"_target_={path!r}: cannot be imported") from None


# ----- composing the project's config tree outside `python run.py` (preflight, bench, tests, notebooks) --------


def compose(overrides=(), return_hydra_config: bool = False):
    """The config `python run.py <overrides>` would run, composed from conf/ with every schema registered."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)
