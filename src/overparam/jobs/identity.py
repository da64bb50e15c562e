"""A job's identity, the Dora way: what its config says beyond the defaults, minus the keys that only change how a
job runs. Every question "is this the same experiment?" asks this module: whether a job is already done, whether a
checkpoint may be resumed, which jobs share a curve in the report and in the critical-width search, the HPARAMS
tab's keys and the folder a job lands in.

- Defaults: a group built from a class (`_target_`: task, model, optim, an analysis) takes its defaults from the
  class's constructor; any other node (the top level, `trainer`) from conf/ (conf/config.yaml and the group's
  default file). A key equal to its default is left out, so a key added later with a default leaves every earlier
  identity as it was, and no list of such keys has to be kept.
- Run-only keys: Hydra's `override_dirname.exclude_keys` in conf/config.yaml, the one list of keys that change how a
  job runs and not what it computes (threads, progress, checkpoints, ...). They are left out of a job's folder name
  (Hydra) and out of its identity (here).
- A class is named by its class name, not its module, so moving a class to another module changes no identity.
- What a job computed also depends on the device type its random streams were drawn on (`result_identity`):
  the same seed draws other boards on CPU and CUDA.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json

from omegaconf import OmegaConf

from overparam.config.schemas import CONF_DIR, parameters

# The config key a sweep varies to answer "how wide": curves are drawn against it.
WIDTH_KEY = "model.m_factor"
# Jobs that differ only in these keys (and the width) sample one curve: a replica's outcome depends on its own seed
# (overparam.seeds), not on how many others trained beside it, so their replicas pool, each replica once.
POOLED_KEYS = ("seed", "trials")
_MISSING = object()


@functools.cache
def run_only_keys() -> tuple[str, ...]:
    """Keys that change how a job runs, not what it computes: conf/config.yaml's override_dirname.exclude_keys."""
    conf = OmegaConf.load(CONF_DIR / "config.yaml")
    return tuple(OmegaConf.to_container(conf.hydra.job.config.override_dirname.exclude_keys))


def identity(config: dict) -> dict:
    """The part of a resolved config that decides what a job computes (a new dict; `hydra` and run-only keys out,
    keys at their default out, classes by name)."""
    config = copy.deepcopy({key: value for key, value in config.items() if key != "hydra"})
    for dotted in run_only_keys():
        parent, leaf = _parent(config, dotted), dotted.rsplit(".", 1)[-1]
        parent.pop(leaf, None)
    _drop_defaults(config, _conf_defaults("config"))
    for group, node in config.items():
        if isinstance(node, dict):
            _drop_group_defaults(group, node)
    return config


def settings(config: dict) -> dict:
    """Every identity key of a resolved config with its value, defaults included, flattened to `group.key` (for
    tables and TensorBoard's HPARAMS tab: a key at its default is still a setting worth showing)."""
    from overparam.config.checks import flatten

    kept = copy.deepcopy({key: value for key, value in config.items() if key != "hydra"})
    for dotted in run_only_keys():
        _parent(kept, dotted).pop(dotted.rsplit(".", 1)[-1], None)
    for node in kept.values():
        if isinstance(node, dict) and isinstance(node.get("_target_"), str):
            node["_target_"] = class_name(node["_target_"])
    return flatten(kept)


def setting(config: dict, dotted: str):
    """The value a resolved config gives `dotted`, or its default when the config predates the key."""
    from overparam.config.checks import flatten

    flat = flatten(config)
    if dotted in flat:
        value = flat[dotted]
        return class_name(value) if dotted.endswith("._target_") and isinstance(value, str) else value
    group, _, key = dotted.rpartition(".")
    node = config.get(group, {}) if group and "." not in group else {}
    target = node.get("_target_") if isinstance(node, dict) else None
    if isinstance(target, str) and _find_class(target) is not None:
        parameter = parameters(_find_class(target)).get(key)
        return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default
    return _conf_defaults(group or "config").get(key)


def is_done(result: dict | None, config: dict, stream_device_type: str = "cpu") -> bool:
    """A job is done when its result finished cleanly from the same experiment, streams drawn on the same device
    type."""
    return result is not None and result.get("status") == "ok" and same_experiment(result, config, stream_device_type)


def result_identity(result: dict) -> dict:
    """What a result computed: its config's identity and the device type its training streams came from."""
    return {**identity(result.get("config", {})), "stream_device": stream_device(result)}


def same_experiment(result: dict | None, config: dict, stream_device_type: str) -> bool:
    """Whether `result` was computed from the experiment `config` describes, streams drawn on that device type."""
    return result is not None and result_identity(result) == {**identity(config), "stream_device": stream_device_type}


def curve_identity(config: dict, stream_device_type: str, width_key: str = WIDTH_KEY) -> str:
    """What a job shares with every other job on its success-vs-width curve, as text: its identity without the
    width and the pooled keys, and the device type of its streams (CPU and CUDA replicas of one seed are two)."""
    kept = identity(config)
    for dotted in (width_key, *POOLED_KEYS):
        _parent(kept, dotted).pop(dotted.rsplit(".", 1)[-1], None)
    return json.dumps({**kept, "stream_device": stream_device_type}, sort_keys=True)


def stream_device(result: dict) -> str:
    """The device type a result's training streams came from (results written before the field: their device's)."""
    return result.get("stream_device") or str(result.get("device", "cpu")).split(":")[0]


def replica_key(result: dict, row: dict, index: int, source: str = "") -> tuple:
    """One replica, whichever job trained it: the device type its streams came from and its seed (rows written
    without a seed count as their own, by `source` and index)."""
    return (stream_device(result), row["seed"]) if "seed" in row else (source, index)


def class_name(target: str) -> str:
    return target.rsplit(".", 1)[-1]


# ----- defaults ---------------------------------------------------------------------------------------------------


def _drop_group_defaults(group: str, node: dict) -> None:
    target = node.get("_target_")
    if isinstance(target, str):
        node["_target_"] = class_name(target)
        cls = _find_class(target)
        if cls is not None:
            _drop_defaults(node, {name: p.default for name, p in parameters(cls).items()
                                  if p.default is not inspect.Parameter.empty})
        for key, value in node.items():  # an analysis group holds one class per part
            if isinstance(value, dict):
                _drop_group_defaults(key, value)
        return
    if any(isinstance(value, dict) and "_target_" in value for value in node.values()):
        for key, value in node.items():
            if isinstance(value, dict):
                _drop_group_defaults(key, value)
        return
    _drop_defaults(node, _conf_defaults(group))


def _drop_defaults(node: dict, defaults: dict) -> None:
    for key in [key for key in node if key in defaults and not isinstance(node[key], dict)]:
        if _plain(node[key]) == _plain(defaults[key]):
            del node[key]


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


@functools.cache
def _conf_defaults(group: str) -> dict:
    """Plain defaults (no interpolations, no nested groups) of conf/config.yaml (`config`) or of the file its
    defaults list picks for `group` (`trainer` -> conf/trainer/default.yaml)."""
    path = CONF_DIR / "config.yaml"
    if group != "config":
        entries = OmegaConf.to_container(OmegaConf.load(path)).get("defaults", [])
        option = next((entry[group] for entry in entries if isinstance(entry, dict) and group in entry), None)
        path = CONF_DIR / group / f"{option}.yaml"
        if option is None or not path.exists():
            return {}
    conf = OmegaConf.load(path)
    return {key: OmegaConf.to_container(conf)[key] for key in conf
            if key not in ("defaults", "hydra") and not OmegaConf.is_interpolation(conf, key)
            and not OmegaConf.is_dict(conf[key])}


@functools.cache
def _find_class(target: str):
    """The class a `_target_` names; a class moved since a result was written is found by its name among the
    classes conf/ names (`/schema/<module.Class>`); None when neither works."""
    import importlib

    for path in (target, *_schema_paths().get(class_name(target), ())):
        module, _, name = path.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            continue
    return None


@functools.cache
def _schema_paths() -> dict[str, tuple[str, ...]]:
    """Class name -> the `module.Class` paths conf/*/*.yaml extend (read as text: nothing imported)."""
    import re

    found: dict[str, list[str]] = {}
    for path in CONF_DIR.glob("*/*.yaml"):
        for match in re.finditer(r"/schema/([\w.]+)@", path.read_text()):
            found.setdefault(class_name(match.group(1)), []).append(match.group(1))
    return {name: tuple(paths) for name, paths in found.items()}


def _parent(config: dict, dotted: str) -> dict:
    """The dict holding a dotted key's leaf (an empty one when a parent is missing)."""
    node = config
    for parent in dotted.split(".")[:-1]:
        node = node.get(parent, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}
