"""The step breakdown (python -m overparam.perf.breakdown) times the real step's own marked phases."""

import json

from overparam.perf import breakdown


def test_the_breakdown_times_the_marked_phases_of_the_real_step(tmp_path):
    out = tmp_path / "breakdown.json"
    points = breakdown.main(["--steps", "1", "2", "--ms", "2", "--replicas", "2", "--seconds", "0.01",
                             "--rounds", "1", "--out", str(out)])
    assert [p["overrides"][:2] for p in points] == [["task.steps=1", "model.m_factor=2"],
                                                     ["task.steps=2", "model.m_factor=2"]]
    one_step, two_steps = ({row["phase"]: row["ms"] for row in p["phases"]} for p in points)
    for phases in (one_step, two_steps):
        assert set(breakdown.STEP_PHASES) <= set(phases) and {"boards", "loss"} <= set(phases)
        assert all(ms >= 0 for ms in phases.values())
        assert phases["losses"] >= phases["boards"]  # the task's phases run inside the step's `losses`
    # a one-block net runs on the 512 patterns and counts them; a deeper one runs the net on the boards
    assert "codes, targets, pattern counts" in one_step and "net" not in one_step
    assert "codes, targets" in two_steps and "net" in two_steps
    written = json.loads(out.read_text())
    assert written["points"] == points
    assert set(written["lightning_floor"]) == {"raw_loop_ms", "trainer_ms", "lightning_ms"}
