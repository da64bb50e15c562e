"""The benchmark's points: a Life config at (steps, m, K), what its step computes (FLOPs), and overparam's time per
replica-step through a Trainer and in a raw loop; Firner's own setting against his loop and the same net without
dropout."""

from __future__ import annotations

import torch

from overparam.config import compose
from overparam.perf.timing import raw_loop_seconds_per_step, timed, trainer_seconds_per_step
from overparam.tasks.life.bench.reference import BATCH, BOARD, firner_step

FIRNER = ("experiment=firner",)


def conv_net_flops(m: int, blocks: int) -> float:
    """Nominal FLOPs of one training step of one replica: 3 x (2 x multiply-adds) over every cell of the batch."""
    macs_per_cell = blocks * (9 * 2 * m + 2 * m * m + m)
    return 3 * 2 * macs_per_cell * BATCH * BOARD * BOARD


def compose_config(m: int, steps: int, replicas: int, max_steps: int, extra=()):
    """The default task's config at this point; `extra` overrides come first (e.g. `FIRNER`'s experiment)."""
    return compose([*extra, f"model.m_factor={m}", f"task.steps={steps}", f"trials={replicas}",
                    f"trainer.max_steps={max_steps}", f"task.train_size={BOARD}", f"task.batch_size={BATCH}"])


def overparam_point(m: int, steps: int, replicas: int, seconds: float, raw_loop: bool, device="cpu",
                    extra=()) -> dict:
    """Trainer time per step; with `raw_loop` also the same module's raw-loop time (Lightning's overhead)."""
    probe = compose_config(m, steps, replicas, 1, extra)
    if raw_loop:
        raw = raw_loop_seconds_per_step(probe, seconds / 2, device=device)
    else:  # one step, only to size the Trainer run
        raw = raw_loop_seconds_per_step(probe, 0.0, warmup=1, min_steps=1, device=device)
    measured_steps = max(3, min(50, round(seconds / 2 / raw)))
    trainer = trainer_seconds_per_step(compose_config(m, steps, replicas, measured_steps + 2, extra), device=device)
    return {"raw_loop_ms": raw * 1e3 if raw_loop else None, "trainer_ms": trainer * 1e3}


def fast_path_flops(m: int, blocks: int, dropout: bool) -> float:
    """FLOPs the fast path really computes in one training step of one replica (3 x forward, board cells only):
    the later blocks per cell, and with Dropout2d the first block after its looked-up 3x3 conv (without it the
    whole first block is a lookup of 512 precomputed patterns, ~0 per cell)."""
    later = (blocks - 1) * (9 * 2 * m + 2 * m * m + m)
    first = 2 * m * m + m if dropout and blocks > 1 else 0
    return 3 * 2 * (later + first) * BATCH * BOARD * BOARD


def firner_point(m: int, steps: int, replicas: int, seconds: float, device="cpu") -> dict:
    """His loop (timed before and after, the faster kept), then overparam's Trainer with his Dropout2d and with
    `model.dropout=0`, at `experiment=firner`, steps blocks of width m, K = replicas."""
    def reference():
        torch.manual_seed(0)
        return timed(firner_step(m, steps, BOARD, BATCH, device), seconds, device=device) * 1e3

    reference_runs = [reference()]
    per_replica = {}
    for name, extra in (("dropout", FIRNER), ("no_dropout", (*FIRNER, "model.dropout=0"))):
        point = overparam_point(m, steps, replicas, seconds, raw_loop=False, device=device, extra=extra)
        per_replica[name] = point["trainer_ms"] / replicas
    reference_runs.append(reference())
    best = min(reference_runs)
    dropout, no_dropout = per_replica["dropout"], per_replica["no_dropout"]
    return {"m": m, "steps": steps, "replicas": replicas, "reference_ms_per_step": best,
            "reference_ms_runs": reference_runs, "dropout_ms_per_replica_step": dropout,
            "no_dropout_ms_per_replica_step": no_dropout, "ratio": best / dropout,
            "no_dropout_ratio": best / no_dropout,
            "dropout_over_no_dropout": dropout / no_dropout,
            "dropout_gflops": fast_path_flops(m, steps, True) / dropout / 1e6,
            "no_dropout_gflops": fast_path_flops(m, steps, False) / no_dropout / 1e6}


def firner_points(ms, steps_list, replicas_list, seconds, device="cpu") -> list[dict]:
    rows = []
    for steps in steps_list:
        for m in ms:
            for replicas in replicas_list:
                rows.append(firner_point(m, steps, replicas, seconds, device))
                print(firner_line(rows[-1]), flush=True)
    return rows


def firner_line(row, peak=None) -> str:
    share = ""
    if peak:
        share = f"  {row['dropout_gflops'] / peak:4.0%} / {row['no_dropout_gflops'] / peak:4.0%} of peak"
    return (f"firner steps={row['steps']} m={row['m']:>2} K={row['replicas']:>3}"
            f"  his loop {row['reference_ms_per_step']:7.2f} ms"
            f"  dropout {row['dropout_ms_per_replica_step']:7.3f} ms/replica-step (ratio {row['ratio']:5.1f}x)"
            f"  no dropout {row['no_dropout_ms_per_replica_step']:7.3f} ({row['no_dropout_ratio']:5.1f}x)"
            f"  dropout / no dropout {row['dropout_over_no_dropout']:.2f}{share}")
