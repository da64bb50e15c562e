"""overparam: how wide must a network be before gradient descent reliably finds a solution that exists?

The names below are imported when first used, so `import overparam` stays light and a task family is imported only
by code that uses it.
"""

_PUBLIC = {
    "load_sweep": "overparam.report.frames",  # a sweep as a DataFrame, one row per replica
    "load_summary": "overparam.report.frames",  # one row per grid point, as summary.csv
    "life_step": "overparam.tasks.life.simulate",
    "parse_rule": "overparam.tasks.life.rules",
    "maxcut_qubo": "overparam.tasks.maxcut.qubo",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'overparam' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_PUBLIC[name]), name)
