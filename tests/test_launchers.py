"""Scale-out launchers: GPU leases that survive worker reuse, local_gpus (joblib), submitit (local and SLURM), Ray.

The GPU logic is tested with simulated devices (any names work as device keys); real-GPU, SLURM-cluster and
Ray tests carry the `gpu` / `ray` markers. Hydra runs in subprocesses, as a user would run it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import ROOT, TINY
from overparam.config import compose
from overparam.jobs import devices, gpu_locks, process, resolvers
from overparam.jobs.identity import identity

# Work that must not be compared between two runs of the same job: where and when it ran.
RUN_FACTS = ("wall_seconds", "started_at", "finished_at", "pid", "host", "device", "threads", "resumed_from_step",
             "trained_steps", "config")


def run_hydra(args, timeout=240, env=None, **popen):
    """`python run.py ARGS` from the repo root; returns the finished process (output captured)."""
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, **popen)


def results_by_job(sweep_dir: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in sorted(sweep_dir.glob("*/result.json"))}


def science(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in RUN_FACTS and key != "schema"}


def max_overlap(intervals) -> int:
    """The largest number of [start, end) intervals that hold at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def summary_rows(sweep_dir: Path) -> list[dict]:
    with (sweep_dir / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


# ----- GPU leases with simulated devices ---------------------------------------------------------------

FAKE_GPUS = ["fake-gpu-A", "fake-gpu-B", "fake-gpu-C"]
# Eight jobs of uneven length (seconds), so that workers free their GPUs out of order.
UNEVEN = [0.30, 0.05, 0.20, 0.02, 0.40, 0.10, 0.05, 0.25]


def _leased_job(lock_dir: str, job: int, seconds: float) -> dict:
    """What a job does with its GPU: take one, hold it for a while, give it back; report when, where and who."""
    with gpu_locks.DeviceLocks(FAKE_GPUS, lock_dir, poll_seconds=0.005).acquire(timeout=60) as lease:
        start = time.time()
        time.sleep(seconds)
        end = time.time()
    return {"job": job, "gpu": lease.index, "start": start, "end": end, "pid": os.getpid(),
            "thread": threading.get_ident()}


def _assert_never_shared(records):
    assert sorted(r["job"] for r in records) == list(range(len(UNEVEN)))
    for gpu in range(len(FAKE_GPUS)):
        held = sorted((r["start"], r["end"]) for r in records if r["gpu"] == gpu)
        for (_, end), (next_start, _) in zip(held, held[1:]):
            assert end <= next_start, f"two jobs held fake GPU {gpu} at once: {held}"
    assert max_overlap([(r["start"], r["end"]) for r in records]) <= len(FAKE_GPUS)


def test_eight_uneven_jobs_on_three_fake_gpus_never_share_one_across_reused_worker_processes(tmp_path):
    # Four worker processes for three GPUs: one worker always has to wait; each worker runs several jobs.
    with ProcessPoolExecutor(max_workers=4, mp_context=get_context("fork")) as pool:
        records = list(pool.map(_leased_job, [str(tmp_path)] * len(UNEVEN), range(len(UNEVEN)), UNEVEN))
    _assert_never_shared(records)
    assert {r["gpu"] for r in records} == {0, 1, 2}
    assert len({r["pid"] for r in records}) < len(records), "no worker ran two jobs: reuse was not exercised"


def test_threads_of_one_process_never_share_a_fake_gpu_either(tmp_path):
    with ThreadPoolExecutor(max_workers=5) as pool:
        records = list(pool.map(_leased_job, [str(tmp_path)] * len(UNEVEN), range(len(UNEVEN)), UNEVEN))
    _assert_never_shared(records)


def test_a_gpu_held_by_a_killed_job_is_free_again(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]); from overparam.jobs.gpu_locks import DeviceLocks;"
         "lease = DeviceLocks(['only-gpu'], sys.argv[2]).acquire(); print('held', flush=True); time.sleep(60)",
         str(ROOT / "src"), str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        locks = gpu_locks.DeviceLocks(["only-gpu"], tmp_path)
        assert locks.try_acquire() is None
        holder.kill()
        holder.wait()
        lease = locks.acquire(timeout=5)
        assert lease.index == 0
        lease.release()
    finally:
        holder.kill()
        holder.wait()


def test_job_device_holds_one_simulated_gpu_for_the_whole_job(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "wants_gpu", lambda accelerator: True)
    monkeypatch.setattr(devices, "gpu_keys", lambda: ["sim0", "sim1"])
    monkeypatch.setattr(devices, "choose_device", lambda accelerator, index: torch.device("cuda", index))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    config = OmegaConf.create({"threads": 1, "trainer": {"accelerator": "gpu"}})
    with devices.job_device(config, tmp_path) as first, devices.job_device(config, tmp_path) as second:
        assert {first.index, second.index} == {0, 1}
        assert gpu_locks.DeviceLocks(["sim0", "sim1"], tmp_path).try_acquire() is None
    lease = gpu_locks.DeviceLocks(["sim0", "sim1"], tmp_path).try_acquire()
    assert lease is not None and lease.index == 0
    lease.release()


def test_cpu_jobs_side_by_side_split_the_cores_without_oversubscribing(monkeypatch):
    monkeypatch.setattr(process, "available_cores", lambda: 8)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert process.default_parallel_jobs("auto", 1) == 8
    assert process.default_parallel_jobs("auto", 3) == 2
    assert process.default_parallel_jobs("auto", "auto") == 8
    for n_jobs in (1, 2, 3, 8):
        assert n_jobs * process.threads_for("auto", n_jobs) <= 8
    monkeypatch.setenv(process.PARALLEL_JOBS_ENV, "4")
    config = OmegaConf.create({"threads": "auto", "trainer": {"accelerator": "cpu"}})
    previous = torch.get_num_threads()
    try:
        with devices.job_device(config) as device:
            assert device.type == "cpu" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_n_jobs_defaults_to_gpus_or_cores_in_the_composed_launcher_config():
    resolvers.register_resolvers()
    config = compose(["hydra/launcher=local_gpus", "threads=1"], return_hydra_config=True)
    expected = torch.cuda.device_count() if torch.cuda.is_available() else process.available_cores()
    assert OmegaConf.select(config, "hydra.launcher.n_jobs") == expected
    assert config.hydra.launcher._target_.endswith("JoblibLauncher")


# ----- whole sweeps ----------------------------------------------------------------------------------


@pytest.mark.slow  # several fresh Python processes: ~20 s on 2 idle cores, a minute when busy
def test_local_gpus_runs_two_cpu_jobs_at_a_time_and_matches_a_sequential_sweep(tmp_path):
    grid = [*TINY, "trials=2", "trainer.max_steps=150", "seed=0,1", "model.m_factor=1,2"]
    parallel, sequential = tmp_path / "parallel", tmp_path / "sequential"
    done = run_hydra(["-m", "hydra/launcher=local_gpus", "hydra.launcher.n_jobs=2", "threads=auto",
                      f"hydra.sweep.dir={parallel}", *grid])
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_hydra(["-m", f"hydra.sweep.dir={sequential}", *grid])
    assert done.returncode == 0, done.stderr[-3000:]

    side_by_side, one_by_one = results_by_job(parallel), results_by_job(sequential)
    assert len(side_by_side) == 4 and side_by_side.keys() == one_by_one.keys()
    for job, result in side_by_side.items():
        assert result["status"] == "ok", result.get("error")
        assert science(result) == science(one_by_one[job]), job
    intervals = [(r["started_at"], r["finished_at"]) for r in side_by_side.values()]
    assert max_overlap(intervals) == 2, f"expected 2 jobs at a time: {sorted(intervals)}"
    assert len({r["pid"] for r in side_by_side.values()}) == 2  # two joblib workers, each reused
    assert {r["threads"] for r in side_by_side.values()} == {process.threads_for("auto", 2)}  # cores shared out
    assert max_overlap([(r["started_at"], r["finished_at"]) for r in one_by_one.values()]) == 1
    assert summary_rows(parallel) == summary_rows(sequential)


def _submitit_task_pids(marker: str) -> list[int]:
    """PIDs of running submitit task processes whose command line mentions `marker` (the sweep folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "submitit.core._submit" in command and marker in command:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow  # several fresh Python processes: ~20 s on 2 idle cores, a minute when busy
def test_submitit_local_sweep_aggregates_and_a_preempted_job_is_requeued_and_resumes_its_checkpoint(tmp_path):
    sweep_dir = tmp_path / "sweep"
    job_overrides = [*TINY, "trials=2", "trainer.max_steps=400", "trainer.checkpoint_every_n_steps=50"]
    launcher = subprocess.Popen(
        [sys.executable, "run.py", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
         f"hydra.sweep.dir={sweep_dir}", *job_overrides, "model.m_factor=1,2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # Preempt the m_factor=2 job as SLURM would: SIGUSR2 to its task once it has written a checkpoint.
        deadline = time.time() + 180
        checkpoint = None
        while checkpoint is None and time.time() < deadline and launcher.poll() is None:
            found = list(sweep_dir.glob("*m_factor=2*/checkpoints/last.ckpt"))
            checkpoint = found[0] if found else None
            time.sleep(0.02)
        assert checkpoint is not None, "the job never wrote a checkpoint"
        job_dir = checkpoint.parent.parent
        tasks = [pid for pid in _submitit_task_pids(str(sweep_dir)) if _task_runs(pid, job_dir)]
        assert len(tasks) == 1, tasks
        os.kill(tasks[0], signal.SIGUSR2)
        output, _ = launcher.communicate(timeout=240)
    finally:
        launcher.kill()
        launcher.wait()
    assert launcher.returncode == 0, output[-3000:]

    results = results_by_job(sweep_dir)
    assert len(results) == 2 and all(r["status"] == "ok" for r in results.values())
    requeued = results[job_dir.name]
    assert requeued["resumed_from_step"] is not None and requeued["resumed_from_step"] > 0
    assert requeued["trained_steps"] == 400
    logs = "".join(path.read_text() for path in sweep_dir.glob(".submitit/*/*.out"))
    assert "Requeued job" in logs  # submitit's own requeue, not a fresh launch

    # The same job, uninterrupted, in this process: the resumed job must end exactly where it ends.
    config = compose([*job_overrides, "model.m_factor=2"])
    assert identity(OmegaConf.to_container(config, resolve=True)) == identity(requeued["config"])
    from overparam.jobs.job import run

    uninterrupted = run(config, tmp_path / "uninterrupted")
    assert uninterrupted["resumed_from_step"] is None
    assert science(requeued) == science(uninterrupted)

    rows = summary_rows(sweep_dir)  # the sweep report pooled both jobs
    assert sorted(row["model.m_factor"] for row in rows) == ["1", "2"]


def _task_runs(pid: int, job_dir: Path) -> bool:
    """Whether process `pid` runs the job of `job_dir`: it holds a file open there (its log, its event file)."""
    try:
        return any(os.readlink(fd).startswith(str(job_dir) + os.sep) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_slurm_launcher_submits_one_array_with_the_requested_resources(tmp_path):
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch-calls"
    bin_dir.mkdir()
    record.mkdir()
    sbatch = bin_dir / "sbatch"
    # A stand-in for SLURM's sbatch: keep the submitted script, answer like sbatch does.
    sbatch.write_text(f'#!/bin/sh\ncp "$1" "{record}/$(date +%s%N).sh"\necho "Submitted batch job 4242"\n')
    sbatch.chmod(0o755)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit checks that srun exists; never called here
    (bin_dir / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    launcher = subprocess.Popen(
        [sys.executable, "run.py", "-m", "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}",
         "hydra.launcher.partition=gpu", "hydra.launcher.account=overparam", "hydra.launcher.qos=high",
         "hydra.launcher.array_parallelism=2", "hydra.launcher.timeout_min=30", "hydra.launcher.mem_gb=4",
         *TINY, "trials=2", "model.m_factor=1,2,3,4"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.time() + 120
        while not list(record.iterdir()) and time.time() < deadline and launcher.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)  # a second submission would come right after the first
    finally:
        launcher.kill()  # it would wait for the array forever: there is no SLURM here
        output, _ = launcher.communicate()
    scripts = list(record.iterdir())
    assert len(scripts) == 1, output[-3000:]
    assert "submitted job array 4242 (4 tasks) to slurm; logs: " in output  # said before it waits
    assert "4242_*_0_log.out" in output
    script = scripts[0].read_text()
    for line in ("--array=0-3%2", "--partition=gpu", "--account=overparam", "--qos=high", "--gpus-per-node=1",
                 "--cpus-per-task=2", "--mem=4GB", "--time=30", "--signal=USR2@120", "--ntasks-per-node=1"):
        assert f"#SBATCH {line}\n" in script, line


# ----- optional environments -------------------------------------------------------------------------


@pytest.mark.ray
def test_ray_launcher_runs_a_tiny_sweep_on_a_local_ray(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    sweep_dir = tmp_path / "sweep"
    done = run_hydra(["-m", "hydra/launcher=ray", f"hydra.sweep.dir={sweep_dir}", "hydra.launcher.ray.init.num_cpus=2",
                      "+hydra.launcher.ray.init.include_dashboard=false", *TINY, "trials=2", "trainer.max_steps=50",
                      "model.m_factor=1,2"], timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = results_by_job(sweep_dir)
    assert len(results) == 2 and all(r["status"] == "ok" for r in results.values())


@pytest.mark.gpu
def test_local_gpus_gives_each_running_job_its_own_gpu(tmp_path):
    if torch.cuda.device_count() < 1:
        pytest.skip("needs a CUDA device")
    gpus = torch.cuda.device_count()
    widths = ",".join(str(m) for m in range(1, 2 * gpus + 2))  # more jobs than GPUs: workers are reused
    done = run_hydra(["-m", "hydra/launcher=local_gpus", f"hydra.sweep.dir={tmp_path}", *TINY, "trials=2",
                      "trainer.max_steps=300", f"model.m_factor={widths}"])
    assert done.returncode == 0, done.stderr[-3000:]
    results = list(results_by_job(tmp_path).values())
    assert all(r["status"] == "ok" and r["device"].startswith("cuda") for r in results)
    for device in {r["device"] for r in results}:
        held = sorted((r["started_at"], r["finished_at"]) for r in results if r["device"] == device)
        assert max_overlap(held) == 1, f"two jobs shared {device}: {held}"
