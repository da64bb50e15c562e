"""Speed of the replica-batched training path, measured against Firner's plain loop in the same run.

    python -m overparam.tasks.life.bench [--quick] [--out bench.json] [--threads 1] [--device cpu|cuda] [--cuda-graphs]
    python -m overparam.tasks.life.bench --firner [--steps 2 3] [--ms 5 20] [--replicas 20]

`--firner` measures Firner's own setting instead (`experiment=firner`: Dropout2d 0.4, LeakyReLU, nn.Sigmoid +
nn.BCELoss, von Neumann, dead edges) against his own loop (`bench.reference`), and the same overparam net
without dropout (`model.dropout=0`), all in the same run.

Every figure is a ratio to something measured in this process a moment earlier, because the machine is
shared: (a) the reference, one Game of Life net trained by a plain PyTorch loop (nn.Conv2d, Adam, BCE,
fresh boards every step), and (b) overparam's own path, `ReplicaModule` driven by a `pl.Trainer` built as
`job.py` builds it (TensorBoard logger on, a `ProgressLog` in `none` mode, no checkpoints), with K replicas.
Both are reported per replica-step; GFLOP/s count the nominal conv arithmetic of a step (forward + backward
= 3x forward), so for overparam, which skips part of that arithmetic, they are an *effective* rate.
The matmul peak (2048 x 2048 fp32) is measured in the same run to put those rates in scale.

On CPU the run first sets glibc's malloc to keep freed memory (`process.keep_freed_memory`, as every job does):
a process setting, so it holds for the reference and overparam alike (`--default-malloc` leaves glibc's defaults).
`--device cuda` runs both sides on the GPU, timing with `torch.cuda.synchronize` around the measured steps only
(none inside the training path).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import torch

from overparam.perf.timing import graphed_seconds_per_step, matmul_peak_gflops, mlp_seconds_per_step, thread_policy
from overparam.tasks.life.bench.points import (
    BATCH,
    BOARD,
    compose_config,
    conv_net_flops,
    firner_line,
    firner_points,
    overparam_point,
)
from overparam.tasks.life.bench.reference import reference_seconds_per_step
from overparam.tasks.life.rules import parse_rule


def run(ms, steps_list, replicas_list, seconds, mlp_size, mlp_batch, threads, overhead_replicas, policy,
        device="cpu", keep_memory=True, cuda_graphs=False, firner=False) -> dict:
    """The points at every (steps, m, K), or with `firner` Firner's own setting's points instead."""
    torch.set_num_threads(threads)
    malloc = "glibc defaults"
    if keep_memory and torch.device(device).type == "cpu":
        from overparam.jobs.process import keep_freed_memory

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
        result["thread_policy"] = thread_policy(compose_config(*policy, 1), seconds)
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
        print(firner_line(r, peak))
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
                        help="with --device cuda: also time the step replayed as a CUDA graph (perf.cuda_graphs)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc settings as they are (jobs set them; see process.keep_freed_memory)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"overparam.tasks.life.bench: --device {args.device} asked for, but torch sees no CUDA GPU "
                 f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
    if device.type not in ("cpu", "cuda"):
        sys.exit(f"overparam.tasks.life.bench: --device {args.device}: only cpu and cuda are supported")
    if args.cuda_graphs and device.type != "cuda":
        sys.exit(f"overparam.tasks.life.bench: --cuda-graphs needs --device cuda (got --device {args.device})")
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
    result["command"] = "python -m overparam.tasks.life.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
