"""The benchmark runs end to end in its quick mode and reports ratios (never asserting how fast anything is)."""

import json
import math

import pytest
import torch

from overparam.perf import timing
from overparam.tasks.life.bench import __main__ as bench
from overparam.tasks.life.bench.points import conv_net_flops
from overparam.tasks.life.bench.reference import firner_net, firner_step


def test_quick_benchmark_writes_ratios(tmp_path):
    out = tmp_path / "bench.json"
    result = bench.main(["--quick", "--out", str(out), "--ms", "1", "--replicas", "1", "2", "--seconds", "0.02",
                         "--mlp-size", "64"])
    written = json.loads(out.read_text())
    assert written["points"] == result["points"]
    assert [(p["m"], p["steps"], p["replicas"]) for p in written["points"]] == [(1, 1, 1), (1, 1, 2)]
    for point in written["points"]:
        for key in ("ratio", "reference_ms_per_step", "overparam_ms_per_replica_step", "overparam_effective_gflops"):
            assert math.isfinite(point[key]) and point[key] > 0
    assert written["matmul_peak_gflops"] > 0
    assert written["device"] == "cpu" and written["malloc"]
    assert written["lightning_overhead"] and "overhead_fraction" in written["lightning_overhead"][0]
    assert written["mlp"]["size"] == 64 and written["mlp"]["fraction_of_peak"] > 0


def test_quick_firner_benchmark_reports_his_loop_and_both_nets(tmp_path):
    out = tmp_path / "bench.json"
    bench.main(["--firner", "--quick", "--out", str(out), "--ms", "1", "--replicas", "2", "--seconds", "0.02"])
    written = json.loads(out.read_text())
    assert written["points"] == [] and "mlp" not in written
    assert [(p["m"], p["steps"], p["replicas"]) for p in written["firner_points"]] == [(1, 2, 2)]
    point = written["firner_points"][0]
    for key in ("ratio", "no_dropout_ratio", "reference_ms_per_step", "dropout_ms_per_replica_step",
                "no_dropout_ms_per_replica_step", "dropout_fraction_of_peak", "no_dropout_fraction_of_peak"):
        assert math.isfinite(point[key]) and point[key] > 0
    assert point["ratio"] == pytest.approx(point["reference_ms_per_step"] / point["dropout_ms_per_replica_step"])


def test_firners_reference_loop_trains_the_net_overparam_exports():
    """His loop's net, layer for layer, is what `export_replica` makes of a replica of `experiment=firner`."""
    from overparam.tasks.life.net import LifeConvNet

    for blocks in (1, 2, 3):
        net = LifeConvNet(1, blocks, 3, "leaky_relu", "sigmoid_bceloss", normalize=True, dropout=0.4)
        exported, reference = net.export_replica(0), firner_net(3, blocks)
        layers = [layer for layer in exported if not isinstance(layer, (torch.nn.Unflatten, torch.nn.Flatten))]
        assert [type(layer) for layer in reference] == [type(layer) for layer in layers]
        assert [getattr(layer, "p", None) for layer in reference] == [getattr(layer, "p", None) for layer in layers]
        assert reference.training
    step = firner_step(2, 2, 6, 4)
    step()  # one step of his loop runs


def test_nominal_flops_match_the_parameter_count_per_cell():
    # Multiply-adds per cell are the weights of a block: 2m^2 + 19m of its 2m^2 + 22m + 1 parameters
    # (3m + 1 are biases).
    for m in (1, 5, 20):
        assert conv_net_flops(m, 1) == 3 * 2 * (2 * m * m + 19 * m) * 128 * 100


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when no GPU is visible")
def test_cuda_mode_without_a_gpu_fails_with_one_clear_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--device", "cuda", "--quick", "--out", str(tmp_path / "bench.json")])
    message = str(exit_info.value.code)
    assert "no CUDA GPU" in message and "\n" not in message
    assert not (tmp_path / "bench.json").exists()


def test_cuda_graphs_on_cpu_fail_with_one_clear_line(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--cuda-graphs", "--quick", "--out", str(tmp_path / "bench.json")])
    assert str(exit_info.value.code) == ("overparam.tasks.life.bench: --cuda-graphs needs --device cuda (got --device "
                                         "cpu)")
    assert not (tmp_path / "bench.json").exists()


def test_timing_on_cuda_synchronizes_only_between_groups_of_steps(monkeypatch):
    """The CUDA timing path, driven on CPU: steps run in groups of 5 between two synchronizations."""
    calls = []
    monkeypatch.setattr(timing, "synchronize", lambda device: calls.append("sync"))
    seconds = timing.timed(lambda: calls.append("step"), seconds=0.0, warmup=1, min_steps=5, device="cuda")
    assert seconds >= 0
    assert calls == ["step", "sync"] + ["step"] * 5 + ["sync"]
