"""Pooling what the analyses declared (`overparam.analysis.base.Analysis`), read from result.json, never from the
analyses' code: per-replica metrics averaged over solved and failed replicas apart, and per-replica flags turned
into rates with their Wilson intervals."""

from __future__ import annotations

import math

from overparam.stats import wilson_interval


def pooled_columns(rows: list[dict], pooling: dict) -> dict:
    """`{m}_mean_success` and `{m}_mean_failed` for each metric `m` of `pooling["by_outcome"]`; `{f}_rate`,
    `{f}_trials`, `{f}_ci_low`, `{f}_ci_high` for each flag `f` of `pooling["rates"]` (`rewind_success` ->
    `rewind_success_rate`). Replicas without the number (not analysed) are left out."""
    out: dict = {}
    for metric in pooling.get("by_outcome", ()):
        if not any(metric in row for row in rows):
            continue
        for group, wanted in (("success", True), ("failed", False)):
            values = [row[metric] for row in rows if bool(row.get("success")) == wanted
                      and isinstance(row.get(metric), (int, float)) and math.isfinite(row[metric])]
            out[f"{metric}_mean_{group}"] = sum(values) / len(values) if values else math.nan
    for flag in pooling.get("rates", ()):
        outcomes = [bool(row[flag]) for row in rows if row.get(flag) is not None]
        if outcomes:
            low, high = wilson_interval(sum(outcomes), len(outcomes))
            out.update({f"{flag}_trials": len(outcomes), f"{flag}_rate": sum(outcomes) / len(outcomes),
                        f"{flag}_ci_low": low, f"{flag}_ci_high": high})
    return out
