"""A buildable class's constructor as its config schema, and the project's config tree composed outside run.py.

A task, a model or an analysis is a class whose constructor is its schema: its keyword parameters are the config
keys, their defaults the config's defaults. A group's yaml extends it by naming the class in its defaults list,

    defaults:
      - /schema/overparam.tasks.life.LifeTask@_here_

and Hydra asks the `overparam://` config source (src/hydra_plugins/overparam_schemas) for that node, which imports
that one class and returns `schema(cls)`. So a default is written once, in the class, and composing a config
imports only the classes it names. Checks of what a type cannot say (ranges, choices) sit beside the class
(`CHECKS`, `overparam.config.checks`).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from overparam.config.checks import ConfigError

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
SCHEMA_GROUP = "schema"  # conf yaml files extend `/schema/<module.Class>`


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


def locate(path: str):
    """The class or function a `_target_` names, or a one-line ConfigError."""
    from hydra.utils import get_object

    try:
        return get_object(path)
    except Exception:  # noqa: BLE001 - any import problem is a config problem here
        raise ConfigError(f"_target_={path!r}: cannot be imported") from None


def compose(overrides=(), return_hydra_config: bool = False):
    """The config `python run.py <overrides>` would run, composed from conf/ (notebooks, preflight, bench, tests)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)
