"""Compose and validate every job of a command line before Hydra starts any of them.

A grid of hundreds of jobs must not die at job 300 because of a typo: `run.py` calls `preflight(argv)`,
which expands the sweep the way Hydra's basic sweeper does (command-line sweeps plus the preset's
`hydra.sweeper.params`), composes each job's config and validates it. The first problem ends the
command with one line on stderr and exit code 2; nothing has been written.
"""

from __future__ import annotations

import re
import sys

from overparam.config import CONF_DIR, ConfigError, compose, flatten, locate, suggest
from overparam.config.validate import refusal, validate

# Hydra flags that do not launch jobs, or that take a value.
_INFO_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--version", "--shell-completion",
               "-sc", "--experimental-rerun"}
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package", "-p"}


def split_command_line(argv: list[str]) -> tuple[bool, list[str], bool]:
    """(multirun, overrides, launches_jobs) from Hydra's command line."""
    multirun, overrides, launches = False, [], True
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in ("-m", "--multirun"):
            multirun = True
        elif flag in _INFO_FLAGS:
            launches = False
        elif flag in _VALUE_FLAGS:
            skip_next = "=" not in arg
            launches = launches and flag not in ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
        elif not arg.startswith("-"):
            overrides.append(arg)
    return multirun, overrides, launches


def _compose(overrides: list[str]):
    return compose(overrides, return_hydra_config=True)


def _expand(arguments: list[str]) -> list[list[str]]:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(arguments)
    return BasicSweeper.split_arguments(parsed, None)[0]


def _is_group(key: str) -> bool:
    return key.startswith("hydra/") or ("." not in key and (CONF_DIR / key).is_dir())


def _explain_composition_error(error: Exception, job: list[str]) -> str:
    """Turn Hydra's multi-line composition errors into one line naming the key and what is allowed."""
    message = str(error)
    missing_group = re.search(r"Could not find '([^']+)/([^']+)'", message) or re.search(
        r"Could not load '([^']+)/([^']+)'", message
    )
    if missing_group:
        group, option = missing_group.groups()
        options = re.findall(r"^\t(\S+)$", message, flags=re.MULTILINE)
        allowed = f"one of {', '.join(options)}" if options else f"a file in conf/{group}/"
        return f"{group}={option}: no such option; must be {allowed}"
    missing_key = (re.search(r"Could not override '([^']+)'", message)
                   or re.search(r"Key '([^']+)' is not in struct", message))
    if missing_key:
        key = missing_key.group(1)
        if refusal(key):
            return refusal(key)
        groups_only = [o for o in job if _is_group(o.split("=", 1)[0].lstrip("+~"))]
        try:
            base = _compose(groups_only)
            from omegaconf import OmegaConf

            candidates = flatten(OmegaConf.to_container(base, resolve=False))
        except Exception:  # noqa: BLE001 - the suggestion is a courtesy
            candidates = {}
        return f"{key} is not a config key{suggest(key, candidates)}"
    return message.strip().splitlines()[0]


def jobs_of(argv: list[str]) -> list[list[str]]:
    """Every job's override list, as Hydra's basic sweeper will launch them."""
    from hydra.errors import HydraException

    multirun, arguments, _ = split_command_line(argv)
    try:
        jobs = _expand(arguments) if multirun else [arguments]
    except HydraException as error:
        raise ConfigError(f"command line: {str(error).strip().splitlines()[0]}") from None
    if not multirun:
        _refuse_sweeps_without_multirun(arguments)
        return jobs
    try:
        first = _compose(jobs[0])
    except Exception as error:  # noqa: BLE001
        raise ConfigError(_explain_composition_error(error, jobs[0])) from None
    sweeper = locate(first.hydra.sweeper._target_) if first.hydra.sweeper.get("_target_") else None
    if callable(getattr(sweeper, "preflight_jobs", None)):  # a sweeper that chooses its own jobs says which to check
        return sweeper.preflight_jobs(first.hydra.sweeper, arguments)
    params = first.hydra.sweeper.get("params") or {}
    if params:
        jobs = _expand([f"{key}={value}" for key, value in params.items()] + arguments)
    return jobs


def _refuse_sweeps_without_multirun(arguments: list[str]) -> None:
    """A sweep on the command line, or a preset that defines one, runs only with -m: say so instead of failing deep
    in a composition (a sweep value) or silently running one job of the grid (a preset's sweeper params)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(arguments):
        if override.is_sweep_override():
            raise ConfigError(f"{override.input_line} is a sweep: add -m to run it (python run.py -m "
                              f"{' '.join(arguments)})")
    params = _compose_or_explain(arguments).hydra.sweeper.get("params") or {}
    if params:
        swept = " ".join(f"{key}={value}" for key, value in params.items())
        raise ConfigError(f"this config sweeps {swept} (hydra.sweeper.params): add -m to run the sweep "
                          f"(python run.py -m {' '.join(arguments)})")


def _job_config(job: list[str], bases: dict) -> dict:
    """The job's resolved config without `hydra`. Jobs of a grid differ mostly in plain `key=value` overrides, so
    the config of their group choices (experiment=, task=, ...) is composed once and the plain overrides are set
    on a copy with the values Hydra's parser gives them; anything else is composed in full, as Hydra would."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    overrides = OverridesParser.create().parse_overrides(job)
    groups = [o.input_line for o in overrides if _is_group(o.key_or_group)]
    plain = [o for o in overrides if not _is_group(o.key_or_group)]
    simple = all(o.type.name == "CHANGE" for o in plain)
    config = None
    if simple:
        key = tuple(groups)
        if key not in bases:
            bases[key] = _compose_or_explain(list(groups))
        base = bases[key]
        if all(OmegaConf.select(base, o.key_or_group, default="__missing__") != "__missing__" for o in plain):
            config = base.copy()
            for override in plain:
                OmegaConf.update(config, override.key_or_group, override.value(), merge=False)
    if config is None:
        config = _compose_or_explain(job)
    container = OmegaConf.to_container(config, resolve=False)
    container.pop("hydra", None)
    try:
        return OmegaConf.to_container(OmegaConf.create(container), resolve=True)
    except Exception as error:  # noqa: BLE001
        raise ConfigError(f"config does not resolve: {str(error).splitlines()[0]}") from None


def _compose_or_explain(job: list[str]):
    try:
        return _compose(job)
    except Exception as error:  # noqa: BLE001 - every composition problem becomes one line
        raise ConfigError(_explain_composition_error(error, job)) from None


def check(argv: list[str]) -> int:
    """Validate every job of the command line; return the number of jobs checked."""
    jobs = jobs_of(argv)
    bases: dict = {}
    for job in {tuple(job): job for job in jobs}.values():
        validate(_job_config(job, bases))
    return len(jobs)


def preflight(argv: list[str]) -> None:
    """Exit with one line and code 2 when any job of `argv` has a bad config."""
    _, _, launches = split_command_line(argv)
    if not launches:
        return
    try:
        check(argv)
    except ConfigError as error:
        print(f"config error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
