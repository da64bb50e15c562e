"""Every config key is checked before any work starts; a bad value raises one line naming the key, the value and
what is allowed.

The schema of a buildable group (task, model, optim) is its `_target_`'s constructor: its keyword parameters are
the valid keys. Ranges and choices come from the class's `CHECKS`, combinations from its `check`; the top-level
and trainer keys are checked here; optimizers are torch's, so their settings' ranges are here too.
"""

from __future__ import annotations

import inspect

from overparam.config import (
    Check,
    ConfigError,
    boolean,
    choice,
    fail,
    flatten,
    integer,
    is_number,
    locate,
    number,
    optional,
    parameters,
    show,
    suggest,
    text,
)

__all__ = ["ACCELERATORS", "ConfigError", "validate"]

ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


def _threads(key, value) -> None:
    if value != "auto" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        fail(key, value, "must be auto or an integer >= 1")


_threads.allowed = "auto or an integer >= 1"


def _betas(key, value) -> None:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) and 0 <= v < 1 for v in value)):
        fail(key, value, "must be two numbers in [0, 1)")


_betas.allowed = "two numbers in [0, 1)"


TOP_LEVEL_CHECKS: dict[str, Check] = {
    "seed": integer(0),
    "trials": integer(1),
    "threads": _threads,
    "force": boolean,
    "name": text,
}
TRAINER_CHECKS: dict[str, Check] = {
    "max_steps": integer(1),
    "accelerator": choice(*ACCELERATORS),
    "progress": choice("log", "bar", "none"),
    "log_every_n_steps": integer(1),
    "checkpoint_every_n_steps": integer(0),
    "keep_checkpoints": boolean,
    "precision": choice("32-true", "64-true"),
    "stop_when_loss_change_below": number(0.0),
    "stop_window_steps": integer(1),
    "stop_when_fitted": boolean,
    "gradient_clip_val": optional(number(0.0, exclusive_minimum=True)),
    "gradient_clip_algorithm": choice("norm", "value"),
    "eval_every_n_steps": integer(0),
    "stop_when_solved": boolean,
    "certify": boolean,
}
# Lightning Trainer settings a user may reach for that a replica job cannot honour, and what to do instead.
REFUSED_TRAINER_KEYS = {
    "accumulate_grad_batches": "every step draws a fresh batch per replica; raise task.batch_size instead",
    "gradient_clip_val": None,  # supported (see TRAINER_CHECKS); listed so the refusal check knows it
    "max_epochs": "a job counts optimizer steps: set trainer.max_steps",
    "devices": "one job holds one device; run more jobs (hydra/launcher=local_gpus or slurm)",
    "strategy": "replicas already share one device's work; run more jobs across devices instead",
}


def refusal(dotted: str) -> str | None:
    """One line saying why a trainer key that Lightning has is not a setting here, or None."""
    group, _, key = dotted.rpartition(".")
    reason = REFUSED_TRAINER_KEYS.get(key) if group == "trainer" else None
    return f"{dotted} is not supported: {reason}" if reason else None
# Settings torch's optimizers share, wherever an optimizer takes them.
OPTIMIZER_CHECKS: dict[str, Check] = {
    "lr": number(0.0, exclusive_minimum=True),
    "momentum": number(0.0, below=1.0),
    "dampening": number(0.0, 1.0),
    "nesterov": boolean,
    "weight_decay": number(0.0),
    "betas": _betas,
    "eps": number(0.0, exclusive_minimum=True),
    "amsgrad": boolean,
}
# Hydra's own instantiation keys, valid in every buildable group.
_HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


def validate(config) -> None:
    """Raise ConfigError on the first bad key of a resolved config (a dict or a DictConfig)."""
    if not isinstance(config, dict):
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(config, resolve=True)
    groups = {"task": config.get("task"), "model": config.get("model"), "optim": config.get("optim"),
              "trainer": config.get("trainer")}
    for group, node in groups.items():
        if not isinstance(node, dict):
            fail(group, node, "must be a config group (task=..., model=..., optim=..., trainer=...)")
    plain = {k: v for k, v in config.items() if k not in groups and k not in ("hydra", "analysis", "logger")}
    _check_plain("", plain, TOP_LEVEL_CHECKS)
    _check_plain("trainer.", groups["trainer"], TRAINER_CHECKS)
    _check_trainer(groups["trainer"])
    task_class = _check_buildable("task", groups["task"])
    model_class = _check_buildable("model", groups["model"])
    _check_buildable("optim", groups["optim"], OPTIMIZER_CHECKS)
    missing = [name for name in task_class.NET_INPUTS if name not in inspect.signature(model_class).parameters]
    if missing:
        fail("model", model_class.__name__,
             f"cannot take {task_class.__name__}'s inputs ({', '.join(missing)}); pick another model=")
    model_class.check(groups["model"])
    task_class.check(groups["task"], groups["model"])
    _check_analyses(config.get("analysis"), groups, task_class, model_class)
    _check_loggers(config.get("logger"))


def _check_loggers(loggers) -> None:
    """Each part of the `logger` group names a Lightning logger class (`_target_`) and only its keyword arguments."""
    _check_parts("logger", loggers, "logger=tensorboard, logger=[tensorboard,csv], ...")


def _check_trainer(trainer: dict) -> None:
    """Combinations of trainer keys that cannot work."""
    if trainer.get("stop_when_solved") and not trainer.get("eval_every_n_steps"):
        raise ConfigError("trainer.stop_when_solved=true: needs the held-out evaluation during training; "
                          f"trainer.eval_every_n_steps={trainer.get('eval_every_n_steps')} must be >= 1")


def _check_analyses(analysis, groups: dict, task_class: type, model_class: type) -> None:
    """Each part of the `analysis` group is a class (`_target_`) whose settings are its constructor's, and it says
    itself whether it can apply to this task and model (`overparam.analysis.base.Analysis`)."""
    for part, (node, target) in _check_parts("analysis", analysis, "analysis=why, analysis=hessian, ...").items():
        if not callable(getattr(target, "unsuitable", None)):
            fail(f"analysis.{part}._target_", node["_target_"], "must name an overparam.analysis.base.Analysis")
        why_not = target.unsuitable(task_class, model_class)
        if why_not:
            raise ConfigError(f"analysis.{part} ({target.__name__}) cannot run here: {why_not}")
        target.check(node, groups["task"], groups["model"])


def _check_parts(group: str, parts, examples: str) -> dict:
    """A group of several buildable parts (`group=[a,b]`): each a node with its `_target_` and only its class's
    keys. Returns {part: (node, class)}."""
    if parts is None:
        return {}
    if not isinstance(parts, dict):
        fail(group, parts, f"must be a group of parts with their _target_ ({examples})")
    checked = {}
    for part, node in parts.items():
        if not isinstance(node, dict):
            fail(f"{group}.{part}", node, "must be a group with its _target_")
        checked[part] = (node, _check_buildable(f"{group}.{part}", node))
    return checked


def _check_plain(prefix: str, node: dict, checks: dict[str, Check]) -> None:
    for key, value in flatten(node, prefix).items():
        check = checks.get(key[len(prefix):])
        if check is None and refusal(key):
            raise ConfigError(refusal(key))
        if check is None:
            raise ConfigError(f"{key} is not a config key{suggest(key, [prefix + k for k in checks])}")
        check(key, value)


def _check_buildable(group: str, node: dict, shared_checks: dict[str, Check] | None = None):
    """Check a group built from `_target_`: known keys, then ranges and choices. Returns the target."""
    if "_target_" not in node:
        fail(f"{group}._target_", None, "must name the class to build (e.g. conf/{group}/*.yaml)")
    target = locate(node["_target_"])
    known = parameters(target)
    checks = {**(shared_checks or {}), **getattr(target, "CHECKS", {})}
    candidates = [f"{group}.{name}" for name in known]
    for key, value in node.items():
        dotted = f"{group}.{key}"
        if key in _HYDRA_KEYS:
            continue
        if key not in known:
            raise ConfigError(f"{dotted} is not a config key{suggest(dotted, candidates)}")
        check = checks.get(key)
        if check is not None:
            check(dotted, value)
        elif not _fits_default(value, known[key].default):
            default = known[key].default
            fail(dotted, value, f"must be a {type(default).__name__} like the default {show(default)}")
    return target


def _fits_default(value, default) -> bool:
    """Keys without a declared check must at least be of their default's plain type."""
    if default is inspect.Parameter.empty or default is None or not isinstance(default, (bool, int, float, str)):
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return is_number(value) and (isinstance(default, float) or isinstance(value, int))
    return isinstance(value, str)
