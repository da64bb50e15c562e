"""Every user-facing config key has a type and a range, checked before any work starts.

A bad value raises `ConfigError` with one line naming the key, the value and what is allowed. The
YAML files under conf/ are the schema for key *names* (strict mode: a key that no YAML declares is
an error, with the nearest valid key suggested); `CHECKS` below adds types and ranges.
"""

from __future__ import annotations

import difflib
import functools
import math
from pathlib import Path

import yaml

# The allowed values live beside the code that uses them; validation only reads them.
from .devices import ACCELERATORS
from .life import BOUNDARIES, NEIGHBORHOODS
from .nets import ACTIVATIONS, HEADS, LAYOUTS
from .optim import OPTIMIZERS
from .analysis.config import check_analysis

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


class ConfigError(ValueError):
    """A config value outside what is allowed; its message is one line."""


def _fail(key: str, value, allowed: str):
    raise ConfigError(f"{key}={_show(value)}: {allowed}")


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(minimum=None, maximum=None):
    def check(key, value):
        if not _is_int(value):
            _fail(key, value, f"must be an integer{_range_text(minimum, maximum)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            _fail(key, value, f"must be an integer{_range_text(minimum, maximum)}")
    return check


def number(minimum=None, maximum=None, exclusive_minimum=False, below=None):
    def check(key, value):
        text = f"must be a number{_range_text(minimum, maximum, exclusive_minimum, below)}"
        if not _is_number(value):
            _fail(key, value, text)
        if minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)):
            _fail(key, value, text)
        if (maximum is not None and value > maximum) or (below is not None and value >= below):
            _fail(key, value, text)
    return check


def _range_text(minimum, maximum, exclusive_minimum=False, below=None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    if below is not None:
        parts.append(f"< {below}")
    return " " + " and ".join(parts) if parts else ""


def choice(*options):
    def check(key, value):
        if value not in options:
            _fail(key, value, f"must be one of {', '.join(map(str, options))}")
    return check


def boolean(key, value):
    if not isinstance(value, bool):
        _fail(key, value, "must be true or false")


def threads(key, value):
    if value != "auto" and not (_is_int(value) and value >= 1):
        _fail(key, value, "must be auto or an integer >= 1")


def density(key, value):
    if _is_number(value):
        if not 0.0 <= value <= 1.0:
            _fail(key, value, "must be a probability in [0, 1] or a range [low, high] inside [0, 1]")
        return
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_number(v) for v in value)
        and 0.0 <= value[0] <= value[1] <= 1.0
    ):
        return
    _fail(key, value, "must be a probability in [0, 1] or a range [low, high] with 0 <= low <= high <= 1")


def betas(key, value):
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) and 0 <= v < 1 for v in value)):
        _fail(key, value, "must be two numbers in [0, 1)")


def hidden_widths(key, value):
    if not (isinstance(value, (list, tuple)) and all(_is_int(v) and v >= 1 for v in value)):
        _fail(key, value, "must be a list of integers >= 1 ([] for a linear model)")


CHECKS = {
    "seed": integer(0),
    "trials": integer(1),
    "threads": threads,
    "force": boolean,
    "name": lambda key, value: None if isinstance(value, str) and value else _fail(key, value, "must be a non-empty name"),
    "task.name": choice("life", "maxcut"),
    "task.neighborhood": choice(*NEIGHBORHOODS),
    "task.boundary": choice(*BOUNDARIES),
    "task.steps": integer(1),
    "task.density": density,
    "task.test_density": number(0.0, 1.0),
    "task.train_size": integer(3),
    "task.test_size": integer(3),
    "task.batch_size": integer(1),
    "task.test_boards": integer(1),
    "task.test_seed": integer(0),
    "model.name": choice("life_conv", "mlp"),
    "model.m_factor": integer(1),
    "model.d_factor": number(0.0, exclusive_minimum=True),
    "model.activation": choice(*ACTIVATIONS),
    "model.head": choice(*HEADS),
    "model.layout": choice(*LAYOUTS),
    "model.normalize": boolean,
    "model.dropout": number(0.0, below=1.0),
    "model.presolve": boolean,
    "model.hidden": hidden_widths,
    "optim.name": choice(*OPTIMIZERS),
    "optim.lr": number(0.0, exclusive_minimum=True),
    "optim.momentum": number(0.0, below=1.0),
    "optim.nesterov": boolean,
    "optim.weight_decay": number(0.0),
    "optim.betas": betas,
    "trainer.max_steps": integer(1),
    "trainer.accelerator": choice(*ACCELERATORS),
    "trainer.progress": choice("log", "bar", "none"),
    "trainer.log_every_n_steps": integer(1),
    "trainer.checkpoint_every_n_steps": integer(0),
    "trainer.keep_checkpoints": boolean,
}


def flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "hydra":
            flat.update(flatten(value, f"{prefix}{key}."))
        elif key != "hydra":
            flat[f"{prefix}{key}"] = value
    return flat


def _yaml_keys(path: Path, prefix: str) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    data.pop("defaults", None)
    return {f"{prefix}{k}": v for k, v in flatten(data).items()}


def known_keys(config: dict) -> dict:
    """Every valid dotted key for this config, with its YAML default: the top level, the chosen task and
    model files (by their `name`), and every optim and trainer file."""
    return _known_keys(config.get("task", {}).get("name"), config.get("model", {}).get("name"))


@functools.lru_cache(maxsize=None)
def _known_keys(task_name, model_name) -> dict:
    known = _yaml_keys(CONF_DIR / "config.yaml", "")
    for group, name in (("task", task_name), ("model", model_name)):
        files = [p for p in (CONF_DIR / group).glob("*.yaml") if (yaml.safe_load(p.read_text()) or {}).get("name") == name]
        for path in files or (CONF_DIR / group).glob("*.yaml"):
            known.update(_yaml_keys(path, f"{group}."))
    for group in ("optim", "trainer"):
        for path in (CONF_DIR / group).glob("*.yaml"):
            known.update(_yaml_keys(path, f"{group}."))
    return known


def suggest(key: str, candidates) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    if not close and "." in key:
        group, leaf = key.rsplit(".", 1)
        close = difflib.get_close_matches(leaf, [c.rsplit(".", 1)[-1] for c in candidates if c.startswith(group + ".")], n=1)
        close = [f"{group}.{close[0]}"] if close else []
    return f" (did you mean {close[0]}?)" if close else ""


def validate(config) -> None:
    """Raise ConfigError on the first bad key of a resolved config (a dict or DictConfig)."""
    if not isinstance(config, dict):
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(config, resolve=True)
    check_analysis(config)  # the analysis group checks its own keys (overparam.analysis.config)
    flat = flatten({key: value for key, value in config.items() if key != "analysis"})
    known = known_keys(config)
    for key in flat:
        if key not in known:
            raise ConfigError(f"{key} is not a config key{suggest(key, known)}")
    for key, value in flat.items():
        check = CHECKS.get(key)
        if check is not None:
            check(key, value)
        elif type(known[key]) in (int, float, str, bool) and not _same_kind(value, known[key]):
            _fail(key, value, f"must be a {type(known[key]).__name__} like the default {_show(known[key])}")
    _check_combinations(config)


def _same_kind(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return _is_number(value) and (isinstance(default, float) or _is_int(value))
    return isinstance(value, type(default))


def _check_combinations(config: dict) -> None:
    task, model = config["task"], config["model"]
    expected_model = {"life": "life_conv", "maxcut": "mlp"}[task["name"]]
    if model["name"] != expected_model:
        _fail("model", model["name"], f"task={task['name']} needs model={expected_model}")
    if task["name"] == "life":
        _check_life(task, model)
    else:
        from .maxcut_task import validate_maxcut

        try:
            validate_maxcut(task)
        except ConfigError:
            raise
        except ValueError as error:
            raise ConfigError(str(error).splitlines()[0]) from None


def _check_life(task: dict, model: dict) -> None:
    from .life import parse_rule

    try:
        rule = parse_rule(task["rule"], task["neighborhood"])
    except ValueError as error:
        raise ConfigError(f"task.{error}") from None
    blocks = math.floor(task["steps"] * model["d_factor"] + 1e-9)
    if blocks < 1:
        _fail("model.d_factor", model["d_factor"], f"gives floor({task['steps']} * d_factor) = 0 blocks; needs >= 1")
    if model["presolve"]:
        runs = len(rule.alive_intervals())
        if model["m_factor"] < runs:
            _fail("model.m_factor", model["m_factor"], f"model.presolve of rule {task['rule']} needs m_factor >= {runs}")
        if model["layout"] == "springer_kenyon" and model["activation"] == "leaky_relu":
            _fail("model.activation", "leaky_relu", "model.presolve with layout=springer_kenyon needs relu, prelu, elu, gelu or silu")
