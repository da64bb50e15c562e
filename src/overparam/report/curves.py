"""A sweep's grid points grouped into curves: one per combination of the swept keys other than width and seed."""

from __future__ import annotations

from collections import defaultdict


def curve_name(curve: tuple) -> str:
    return ",".join(_part(key, value) for key, value in curve) or "all"


def _part(key: str, value) -> str:
    """`steps=2`; a class (`task._target_`) by its group and class name, `task=LifeTask`: a leading underscore
    would also hide the label from matplotlib's legend."""
    parts = key.split(".")
    if parts[-1] == "_target_" and len(parts) > 1:
        return f"{parts[-2]}={str(value).rsplit('.', 1)[-1]}"
    return f"{parts[-1]}={_format(value)}"


def _format(value) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def curves(points: list) -> dict[tuple, list]:
    grouped: dict[tuple, list] = defaultdict(list)
    for point in points:
        if point.rows:
            grouped[point.curve].append(point)
    return grouped


def chart_kind(columns) -> str:
    """A chart of [m_mean, m_ci_low, m_ci_high] is drawn with its band (Margin); any other as lines."""
    is_band = len(columns) == 3 and columns[0].endswith("_mean") and columns[1:] == [
        columns[0][: -len("_mean")] + suffix for suffix in ("_ci_low", "_ci_high")]
    return "Margin" if is_band else "Multiline"
