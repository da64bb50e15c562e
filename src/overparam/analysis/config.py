"""The `analysis` config group: which parts are on, and checks of their settings (one-line `ConfigError`s)."""

from __future__ import annotations

PARTS = ("walk", "hessian", "lottery", "distance")

# key -> (kind, minimum): every setting is an integer or number >= minimum, or a boolean (kind bool).
SETTINGS = {
    "walk": {"enabled": (bool, None), "boards": (int, 1), "size": (int, 3), "seed": (int, 0), "points": (int, 1),
             "images": (bool, None), "destination": (str, ("presolve", "firner"))},
    "hessian": {"enabled": (bool, None), "boards": (int, 1), "seed": (int, 0), "top_k": (int, 1),
                "dense_limit": (int, 0), "lanczos_steps": (int, 1), "probes": (int, 1),
                "zero_tolerance": (float, 0.0), "outlier_fraction": (float, 0.0), "images": (bool, None)},
    "lottery": {"enabled": (bool, None), "finetune_steps": (int, 0), "rewind": (bool, None),
                "rewind_steps": (int, 0), "baseline_trials": (int, 0)},
    "distance": {"enabled": (bool, None)},
}


def enabled_parts(config) -> list[str]:
    analysis = config.get("analysis") if hasattr(config, "get") else None
    if not analysis:
        return []
    return [part for part in PARTS if part in analysis and analysis[part].get("enabled", False)]


def check_analysis(config: dict) -> None:
    """Raise `overparam.validate.ConfigError` naming the first bad `analysis.*` key of a resolved config dict."""
    from ..config import ConfigError

    analysis = config.get("analysis")
    if analysis is None:
        return
    if not isinstance(analysis, dict):
        raise ConfigError(f"analysis={analysis!r}: must be a group of {', '.join(PARTS)} settings (analysis=why)")
    for part, settings in analysis.items():
        if part not in SETTINGS:
            raise ConfigError(f"analysis.{part} is not an analysis (one of {', '.join(PARTS)})")
        if not isinstance(settings, dict):
            raise ConfigError(f"analysis.{part}={settings!r}: must be a group of settings")
        for key, value in settings.items():
            name = f"analysis.{part}.{key}"
            if key not in SETTINGS[part]:
                raise ConfigError(f"{name} is not a config key (one of {', '.join(SETTINGS[part])})")
            kind, minimum = SETTINGS[part][key]
            if kind is str:
                if value not in minimum:
                    raise ConfigError(f"{name}={value!r}: must be one of {', '.join(minimum)}")
            elif kind is bool:
                if not isinstance(value, bool):
                    raise ConfigError(f"{name}={value!r}: must be true or false")
            else:
                wrong_type = isinstance(value, bool) or not isinstance(value, (int, float))
                if wrong_type or (kind is int and value != int(value)) or value < minimum:
                    what = "an integer" if kind is int else "a number"
                    raise ConfigError(f"{name}={value!r}: must be {what} >= {minimum}")
    walk = analysis.get("walk", {})
    if walk.get("enabled") and walk.get("destination") == "firner" and (
        config.get("task", {}).get("rule") != "B3/S23" or config.get("model", {}).get("layout") != "firner"
    ):
        raise ConfigError("analysis.walk.destination='firner': Firner's hand solution needs task.rule=B3/S23 and "
                          "model.layout=firner")
    from ..config import locate
    from ..nets.life_conv import LifeConvNet

    target = config.get("model", {}).get("_target_")
    if "lottery" in analysis and analysis["lottery"].get("enabled") and not (
            target and issubclass(locate(target), LifeConvNet)):
        raise ConfigError(f"analysis.lottery.enabled=True: needs model=life_conv (a LifeConvNet), got {target}")
