"""The step breakdown (python -m overparam.breakdown) times the very computation a training step runs."""

import json

from overparam import breakdown


def test_the_phase_split_computes_the_training_steps_loss_and_reports_every_phase(tmp_path):
    out = tmp_path / "breakdown.json"
    points = breakdown.main(["--steps", "1", "2", "--ms", "2", "--replicas", "2", "--seconds", "0.01",
                             "--rounds", "1", "--kernel-ms", "2", "--out", str(out)])
    assert [(p["steps"], p["m"]) for p in points] == [(1, 2), (2, 2)]
    for point in points:
        assert point["split_loss_error"] == 0.0  # the split runs the task's own computation, same seeds
        assert set(point["phases_ms"]) == {*breakdown.PHASES, "total"}
        assert all(ms >= 0 for ms in point["phases_ms"].values())
    # only the flat path (steps > 1) has later blocks, and it makes its targets apart from the codes
    assert points[0]["phases_ms"]["later blocks"] == 0.0 and points[1]["phases_ms"]["later blocks"] > 0.0
    written = json.loads(out.read_text())
    assert written["points"] == points
    assert set(written["lightning_floor"]) == {"raw_loop_ms", "trainer_ms", "lightning_ms"}
    assert [row["m"] for row in written["kernel"]] == [2]
