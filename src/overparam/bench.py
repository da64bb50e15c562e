"""Speed of the replica-batched training path, measured against Firner's plain loop in the same run.

    python -m overparam.bench [--quick] [--out bench.json] [--threads 1] [--device cpu|cuda] [--cuda-graphs]
    python -m overparam.bench --firner [--steps 2 3] [--ms 5 20] [--replicas 20]

`--firner` measures Firner's own setting instead (`experiment=firner`: Dropout2d 0.4, LeakyReLU, nn.Sigmoid +
nn.BCELoss, von Neumann, dead edges) against his own loop (`overparam.bench_reference`), and the same overparam net
without dropout (`model.dropout=0`), all in the same run.

Every figure is a ratio to something measured in this process a moment earlier, because the machine is
shared: (a) the reference, one Game of Life net trained by a plain PyTorch loop (nn.Conv2d, Adam, BCE,
fresh boards every step), and (b) overparam's own path, `ReplicaModule` driven by a `pl.Trainer` built as
`job.py` builds it (TensorBoard logger on, a `ProgressLog` in `none` mode, no checkpoints), with K replicas.
Both are reported per replica-step; GFLOP/s count the nominal conv arithmetic of a step (forward + backward
= 3x forward), so for overparam, which skips part of that arithmetic, they are an *effective* rate.
The matmul peak (2048 x 2048 fp32) is measured in the same run to put those rates in scale.

On CPU the run first sets glibc's malloc to keep freed memory (`devices.keep_freed_memory`, as every job does):
a process setting, so it holds for the reference and overparam alike (`--default-malloc` leaves glibc's defaults).
`--device cuda` runs both sides on the GPU, timing with `torch.cuda.synchronize` around the measured steps only
(none inside the training path).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from .bench_reference import firner_step
from .config import compose
from .tasks.life import life_run, parse_rule

BOARD, BATCH = 10, 128
FIRNER = ("experiment=firner",)


# ----- the machine ---------------------------------------------------------------------------------------


def synchronize(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously); nothing to wait for on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(size: int = 2048, seconds: float = 0.5, device="cpu") -> float:
    """Best fp32 matmul rate over a few repetitions: the ceiling every other rate is compared to."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    best, spent = math.inf, 0.0
    while spent < seconds:
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return 2 * size**3 / best / 1e9


def conv_net_flops(m: int, blocks: int) -> float:
    """Nominal FLOPs of one training step of one replica: 3 x (2 x multiply-adds) over every cell of the batch."""
    macs_per_cell = blocks * (9 * 2 * m + 2 * m * m + m)
    return 3 * 2 * macs_per_cell * BATCH * BOARD * BOARD


def _timed(step, seconds: float, warmup: int = 2, min_steps: int = 5, device="cpu") -> float:
    """Median seconds per call of `step`, after `warmup` calls, over about `seconds` of calls.

    The median, because on a shared machine a few calls land in another process's time slice. On CUDA the
    steps are timed in groups between two synchronizations (a sync after every step would stop the CPU from
    queueing the next step while the GPU runs this one), and the median is over groups' means.
    """
    for _ in range(warmup):
        step()
    cuda = torch.device(device).type == "cuda"
    group = 5 if cuda else 1
    durations: list[float] = []
    synchronize(device)
    started = time.perf_counter()
    while len(durations) < max(1, min_steps // group) or time.perf_counter() - started < seconds:
        start = time.perf_counter()
        for _ in range(group):
            step()
        synchronize(device)
        durations.append((time.perf_counter() - start) / group)
    return statistics.median(durations)


# ----- (a) the reference: Firner's way, one model, a plain loop ---------------------------------------------


def reference_net(m: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for block in range(blocks):
        layers += [nn.Conv2d(1, 2 * m, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * m, m, 1), nn.ReLU(), nn.Conv2d(m, 1, 1)]
        if block < blocks - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def reference_seconds_per_step(m: int, steps: int, rule, seconds: float, device="cpu") -> float:
    torch.manual_seed(0)
    net = reference_net(m, steps).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()

    def step():
        boards = (torch.rand(BATCH, 1, BOARD, BOARD, device=device) < 0.5).float()
        targets = life_run(boards, steps, rule)
        optimizer.zero_grad()
        loss = loss_fn(net(boards), targets)
        loss.backward()
        optimizer.step()

    return _timed(step, seconds, device=device)


# ----- (b) overparam's path: ReplicaModule, through Lightning and in a raw loop ---------------------------------


def compose_config(m: int, steps: int, replicas: int, max_steps: int, extra=()):
    """The default task's config at this point; `extra` overrides come first (e.g. `FIRNER`'s experiment)."""
    return compose([*extra, f"model.m_factor={m}", f"task.steps={steps}", f"trials={replicas}",
                    f"trainer.max_steps={max_steps}", f"task.train_size={BOARD}", f"task.batch_size={BATCH}"])


def raw_loop_seconds_per_step(config, seconds: float, warmup: int = 2, min_steps: int = 5, device="cpu") -> float:
    """The module's own step_loss, backward and optimizer step, with no Trainer around them."""
    from .training import build_hand_driven

    module, optimizer = build_hand_driven(config, device)
    cuda = torch.device(device).type == "cuda"

    def step():
        optimizer.zero_grad(set_to_none=True)
        module.step_loss().backward()
        if not cuda:  # outside a Trainer global_step stays 0: on CUDA this check would sync every step, not every 50th
            module.on_before_optimizer_step(optimizer)
        optimizer.step()

    return _timed(step, seconds, warmup, min_steps, device=device)


def trainer_seconds_per_step(config, warmup: int = 2, device="cpu") -> float:
    """Median time between the ends of consecutive training steps inside `trainer.fit`, after `warmup` steps.

    On CUDA, the mean over the steps after `warmup` instead: the clock synchronizes only at the first and the
    last of them, so that the measurement adds no host sync to the steps it measures.
    """
    import pytorch_lightning as pl

    from .training import build_module, build_trainer

    cuda = torch.device(device).type == "cuda"
    max_steps = config.trainer.max_steps

    class StepClock(pl.Callback):
        def __init__(self):
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            if cuda:
                if batch_index not in (warmup - 1, max_steps - 1):
                    return
                synchronize(device)
            self.ends.append(time.perf_counter())

    clock = StepClock()
    with tempfile.TemporaryDirectory() as log_dir:
        settings = OmegaConf.merge(config.trainer, {"progress": "none"})
        trainer = build_trainer(settings, torch.device(device), log_dir, callbacks=[clock])
        trainer.fit(build_module(config), train_dataloaders=range(max_steps))
    if cuda:
        first, last = clock.ends
        return (last - first) / (max_steps - warmup)
    ends = clock.ends[warmup - 1 :]
    return statistics.median(b - a for a, b in zip(ends[:-1], ends[1:]))


def graphed_seconds_per_step(config, seconds: float, device) -> tuple[float | None, str | None]:
    """The module's step replayed as a CUDA graph (`overparam.cuda_graphs`), or why it cannot be."""
    from .cuda_graphs import GraphedStep, unavailable_reason
    from .training import build_hand_driven

    module, optimizer = build_hand_driven(config, device)
    reason = unavailable_reason(module, optimizer, device)
    if reason:
        return None, reason
    graphed = GraphedStep(module, optimizer)
    return _timed(graphed.step, seconds, device=device), None


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


# ----- (c) Firner's own setting: his loop, overparam with his Dropout2d and without it --------------------------------


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
        return _timed(firner_step(m, steps, BOARD, BATCH, device), seconds, device=device) * 1e3

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
                print(_firner_line(rows[-1]), flush=True)
    return rows


def _firner_line(row, peak=None) -> str:
    share = ""
    if peak:
        share = f"  {row['dropout_gflops'] / peak:4.0%} / {row['no_dropout_gflops'] / peak:4.0%} of peak"
    return (f"firner steps={row['steps']} m={row['m']:>2} K={row['replicas']:>3}"
            f"  his loop {row['reference_ms_per_step']:7.2f} ms"
            f"  dropout {row['dropout_ms_per_replica_step']:7.3f} ms/replica-step (ratio {row['ratio']:5.1f}x)"
            f"  no dropout {row['no_dropout_ms_per_replica_step']:7.3f} ({row['no_dropout_ratio']:5.1f}x)"
            f"  dropout / no dropout {row['dropout_over_no_dropout']:.2f}{share}")


# ----- the QUBO MLP: one 4096 -> 4096 linear layer, batch 500, MSE, SGD ---------------------------------------------


def mlp_seconds_per_step(size: int, batch: int, seconds: float, device="cpu") -> tuple[float, str]:
    """One optimizer step of the adjacency-target MLP (K = 1, `overparam.nets.mlp.ReplicaMLP`)."""
    from .nets.mlp import ReplicaMLP

    net = ReplicaMLP(replicas=1, inputs=size, outputs=size, hidden=[], activation="relu")
    net.reset_parameters([0])
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    inputs, targets = torch.randn(1, batch, size, device=device), torch.randn(1, batch, size, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(net(inputs), targets).backward()
        optimizer.step()

    return _timed(step, seconds, warmup=1, min_steps=2, device=device), "overparam.nets.mlp.ReplicaMLP"


# ----- thread policy ------------------------------------------------------------------------------------------------


def _busy_core():
    """A process spinning on one core, standing in for another job on a shared machine."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def thread_policy(m: int, steps: int, replicas: int, seconds: float) -> list[dict]:
    rows = []
    config = compose_config(m, steps, replicas, 1)
    before = torch.get_num_threads()
    try:
        for busy in (False, True):
            spinner = _busy_core() if busy else None
            try:
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    ms = raw_loop_seconds_per_step(config, seconds) * 1e3
                    rows.append({"threads": threads, "other_core_busy": busy, "step_ms": ms,
                                 "per_replica_step_ms": ms / replicas})
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
    finally:
        torch.set_num_threads(before)
    return rows


# ----- the whole benchmark ------------------------------------------------------------------------------------------


def run(ms, steps_list, replicas_list, seconds, mlp_size, mlp_batch, threads, overhead_replicas, policy,
        device="cpu", keep_memory=True, cuda_graphs=False, firner=False) -> dict:
    """The points at every (steps, m, K), or with `firner` Firner's own setting's points instead."""
    torch.set_num_threads(threads)
    malloc = "glibc defaults"
    if keep_memory and torch.device(device).type == "cpu":
        from .devices import keep_freed_memory

        malloc = "keep freed memory (process setting: reference and overparam alike)" if keep_freed_memory() \
            else "not glibc: defaults"
    print(f"device {device}; malloc: {malloc}", flush=True)
    rule = parse_rule("B3/S23", "moore")
    peak = matmul_peak_gflops(device=device)
    result = {"device": str(device), "malloc": malloc, "threads": threads, "cpu_cores": os.cpu_count(),
              "torch": torch.__version__, "matmul_peak_gflops": peak, "board": BOARD, "batch": BATCH, "points": [],
              "lightning_overhead": []}
    if torch.device(device).type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    if firner:
        result["firner_points"] = firner_points(ms, steps_list, replicas_list, seconds, device)
    for steps in [] if firner else steps_list:
        for m in ms:
            # The reference is timed before and after its overparam points and the faster time kept: a conservative
            # ratio, and a check on the load drifting between the two (both are in the JSON).
            reference_runs = [reference_seconds_per_step(m, steps, rule, seconds, device) * 1e3]
            flops = conv_net_flops(m, steps)
            rows = []
            for replicas in replicas_list:
                point = overparam_point(m, steps, replicas, seconds, raw_loop=replicas == overhead_replicas,
                                        device=device)
                per_replica = point["trainer_ms"] / replicas
                rows.append({
                    "m": m, "steps": steps, "replicas": replicas,
                    "overparam_ms_per_replica_step": per_replica,
                    "overparam_effective_gflops": flops / per_replica / 1e6,
                    "overparam_step_ms": point["trainer_ms"],
                })
                if cuda_graphs:
                    graphed, why_not = graphed_seconds_per_step(compose_config(m, steps, replicas, 1), seconds, device)
                    rows[-1].update(graph_ms_per_replica_step=graphed * 1e3 / replicas if graphed else None,
                                    graph_unavailable=why_not)
                if replicas == overhead_replicas:
                    overhead = {"m": m, "steps": steps, "replicas": replicas, "raw_loop_ms": point["raw_loop_ms"],
                                "trainer_ms": point["trainer_ms"],
                                "overhead_fraction": 1 - point["raw_loop_ms"] / point["trainer_ms"]}
                    result["lightning_overhead"].append(overhead)
            reference_runs.append(reference_seconds_per_step(m, steps, rule, seconds, device) * 1e3)
            reference = min(reference_runs)
            for row in rows:
                row.update(reference_ms_per_step=reference, reference_ms_runs=reference_runs,
                           ratio=reference / row["overparam_ms_per_replica_step"],
                           reference_gflops=flops / reference / 1e6)
                if row.get("graph_ms_per_replica_step"):
                    row["graph_ratio"] = reference / row["graph_ms_per_replica_step"]
                result["points"].append(row)
                print(_point_line(row, peak), flush=True)
    if mlp_size:
        mlp_seconds, source = mlp_seconds_per_step(mlp_size, mlp_batch, seconds, device)
        mlp_flops = 3 * 2 * mlp_batch * mlp_size * mlp_size
        result["mlp"] = {"size": mlp_size, "batch": mlp_batch, "ms_per_step": mlp_seconds * 1e3, "source": source,
                         "gflops": mlp_flops / mlp_seconds / 1e9,
                         "fraction_of_peak": mlp_flops / mlp_seconds / 1e9 / peak}
    if policy:
        result["thread_policy"] = thread_policy(*policy, seconds)
        torch.set_num_threads(threads)
    # Measured again at the end and the best kept: on a shared machine one window may be a bad one.
    result["matmul_peak_gflops"] = peak = max(peak, matmul_peak_gflops(device=device))
    for row in result["points"]:
        row["overparam_fraction_of_peak"] = row["overparam_effective_gflops"] / peak
    for row in result.get("firner_points", []):
        row.update(dropout_fraction_of_peak=row["dropout_gflops"] / peak,
                   no_dropout_fraction_of_peak=row["no_dropout_gflops"] / peak)
    if "mlp" in result:
        result["mlp"]["fraction_of_peak"] = result["mlp"]["gflops"] / peak
    print_table(result)
    return result


def _point_line(row, peak) -> str:
    runs = "/".join(f"{ms:.1f}" for ms in row["reference_ms_runs"])
    return (f"steps={row['steps']} m={row['m']:>2} K={row['replicas']:>3}"
            f"  reference {row['reference_ms_per_step']:7.2f} ms"
            f" (runs {runs})"
            f"  overparam {row['overparam_ms_per_replica_step']:7.3f} ms/replica-step  ratio {row['ratio']:6.1f}x"
            f"  eff. {row['overparam_effective_gflops']:6.1f} GFLOP/s"
            f" ({row['overparam_effective_gflops'] / peak:.0%} of peak)")


def print_table(result: dict) -> None:
    peak = result["matmul_peak_gflops"]
    where = result.get("gpu", f"{result['threads']} thread(s)")
    print(f"\n{result['device']}, malloc: {result['malloc']}")
    print(f"matmul peak (2048^2 fp32, {where}): {peak:.1f} GFLOP/s")
    if result["points"]:
        print("steps   m     K   reference ms/step   overparam ms/replica-step   ratio   ref GFLOP/s   eff. GFLOP/s")
    for r in result["points"]:
        print(f"{r['steps']:>5} {r['m']:>3} {r['replicas']:>5}   {r['reference_ms_per_step']:17.2f}   "
              f"{r['overparam_ms_per_replica_step']:25.3f}   {r['ratio']:5.1f}   {r['reference_gflops']:11.2f}   "
              f"{r['overparam_effective_gflops']:12.1f}")
    if result.get("firner_points"):
        print("Firner's setting (experiment=firner) against his loop; kernel share of peak: the FLOPs the fast path "
              "computes (bench.fast_path_flops), with dropout / without")
    for r in result.get("firner_points", []):
        print(_firner_line(r, peak))
    for r in result["points"]:
        if "graph_unavailable" in r:
            graphed = (f"{r['graph_ms_per_replica_step']:.4f} ms/replica-step, ratio {r['graph_ratio']:.1f}x"
                       if r.get("graph_ratio") else f"not captured: {r['graph_unavailable']}")
            print(f"CUDA graph steps={r['steps']} m={r['m']} K={r['replicas']}: {graphed}")
    for o in result["lightning_overhead"]:
        print(f"Lightning overhead steps={o['steps']} m={o['m']} K={o['replicas']}: "
              f"raw loop {o['raw_loop_ms']:.2f} ms, "
              f"Trainer {o['trainer_ms']:.2f} ms per step: {o['overhead_fraction']:.1%}")
    if "mlp" in result:
        q = result["mlp"]
        print(f"QUBO MLP {q['size']}->{q['size']}, batch {q['batch']} ({q['source']}): {q['ms_per_step']:.1f} ms/step, "
              f"{q['gflops']:.1f} GFLOP/s = {q['fraction_of_peak']:.0%} of peak")
    for p in result.get("thread_policy", []):
        print(f"threads={p['threads']} other core busy={p['other_core_busy']}: {p['step_ms']:.2f} ms/step")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller grid and shorter timings (well under a minute)")
    parser.add_argument("--firner", action="store_true",
                        help="Firner's setting (experiment=firner, Dropout2d) against his loop and without dropout: "
                             "default steps 2 3, m 5 20, K 20; no MLP or thread policy unless asked")
    parser.add_argument("--out", default="bench.json", help="where to write the JSON results")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the default config's `threads: 1`)")
    parser.add_argument("--ms", type=int, nargs="+", help="m_factor values (default 1 5 20)")
    parser.add_argument("--steps", type=int, nargs="+", help="Life steps (default 1 3)")
    parser.add_argument("--replicas", type=int, nargs="+", help="K values (default 1 32 128)")
    parser.add_argument("--seconds", type=float, help="measuring time per timing")
    parser.add_argument("--mlp-size", type=int, help="MLP width (default 4096; 0 skips it)")
    parser.add_argument("--no-thread-policy", action="store_true", help="skip the 1-vs-2-threads, idle-vs-busy runs")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N: both sides on that GPU")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="with --device cuda: also time the step replayed as a CUDA graph (overparam.cuda_graphs)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc settings as they are (jobs set them; see devices.keep_freed_memory)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"overparam.bench: --device {args.device} asked for, but torch sees no CUDA GPU "
                 f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
    if device.type not in ("cpu", "cuda"):
        sys.exit(f"overparam.bench: --device {args.device}: only cpu and cuda are supported")
    if args.cuda_graphs and device.type != "cuda":
        sys.exit(f"overparam.bench: --cuda-graphs needs --device cuda (got --device {args.device})")
    # Lightning's per-fit banners and "fewer batches than log_every_n_steps" warnings would bury the table.
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    quick, firner = args.quick, args.firner
    if firner:
        ms = args.ms or ([5] if quick else [5, 20])
        steps_list = args.steps or ([2] if quick else [2, 3])
        replicas_list = args.replicas or [20]
    else:
        ms = args.ms or ([1, 5] if quick else [1, 5, 20])
        steps_list = args.steps or ([1] if quick else [1, 3])
        replicas_list = args.replicas or ([1, 32] if quick else [1, 32, 128])
    seconds = args.seconds or (0.3 if quick else 1.0)
    mlp_size = args.mlp_size if args.mlp_size is not None else (0 if firner else 1024 if quick else 4096)
    overhead_replicas = 32 if 32 in replicas_list else max(replicas_list)
    policy = None if (quick or firner or args.no_thread_policy or device.type == "cuda") else (5, 1, 32)
    result = run(ms, steps_list, replicas_list, seconds, mlp_size, 500, args.threads, overhead_replicas, policy,
                 device, keep_memory=not args.default_malloc, cuda_graphs=args.cuda_graphs, firner=firner)
    result["command"] = "python -m overparam.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
