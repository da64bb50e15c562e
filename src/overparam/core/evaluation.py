"""The held-out evaluation during training: when each replica first became exact, and whether it stayed so.

`trainer.eval_every_n_steps` (0: off): after every n-th optimizer step, at the last step, and at a step where another
callback stops training, each replica is scored on the task's held-out set by the task's own `evaluate` (eval mode, no
gradient, the replica's training untouched: no training stream is drawn from). The record:

- `steps`: the evaluated steps, ascending;
- `exact`: per evaluation, per replica, whether the replica was exact there (a diverged replica never is).

From it the job writes, per replica, `solved_at_step` (the first evaluated step at which it was exact, null if never),
`exact_at_end` (exact at the last evaluation) and `exact_at_steps` (the runs of evaluated steps at which it was
exact, `[[first, last], ...]`, each run holding every evaluated step between its ends), and the job's
`evaluated_steps`: together, exactness at every evaluated step (`exact_at`).

With no learning-rate schedule a job stopped at step b is the job run with `trainer.max_steps=b`, so one run answers
"would it have succeeded with budget b?" for every evaluated b (`overparam.report.budget`).

`trainer.stop_when_solved`: training ends at the first evaluation after which every replica has been exact at some
evaluation or has diverged. A replica's success then means "exact at some evaluation" (`solved_at_step` is not
null), which depends on its own training only, not on which other replicas shared its job.

The record travels in checkpoints (`state_dict`), so a resumed job writes what an uninterrupted one writes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytorch_lightning as pl

from overparam.stats import summarize

# What the TensorBoard curves leave out of the held-out rows: the training loss is logged by the step already.
_NOT_LOGGED = ("final_loss_mean",)


class HeldOutEvaluation(pl.Callback):
    def __init__(self, every: int, max_steps: int, stop_when_solved: bool = False):
        if every < 1:
            raise ValueError(f"every={every} must be >= 1")
        self.every, self.max_steps, self.stop_when_solved = every, max_steps, stop_when_solved
        self.steps: list[int] = []
        self.exact: list[list[bool]] = []
        self.stopped_at_step: int | None = None
        self.seconds = 0.0  # spent evaluating in this run (not carried across a resume): the evaluation's cost

    def due(self, trainer: pl.Trainer) -> bool:
        step = trainer.global_step
        if self.steps and self.steps[-1] == step:
            return False
        return step % self.every == 0 or step >= self.max_steps or trainer.should_stop

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index) -> None:
        if not self.due(trainer):
            return
        step = trainer.global_step
        started = time.perf_counter()
        with trainer.strategy.precision_plugin.forward_context():  # the dtype training runs in (64-true: float64)
            rows = module.evaluate()
        self.record(step, [bool(row["success"]) for row in rows])
        for logger in module.loggers:
            logger.log_metrics(self.scalars(rows), step=step)
        self.seconds += time.perf_counter() - started
        if self.stop_when_solved and all(solved or not alive
                                         for solved, alive in zip(self.solved(), module.alive.tolist())):
            trainer.should_stop = True
            self.stopped_at_step = step

    def record(self, step: int, exact: Sequence[bool]) -> None:
        self.steps.append(int(step))
        self.exact.append([bool(e) for e in exact])

    def solved(self) -> list[bool]:
        """Per replica: exact at some evaluation so far."""
        if not self.exact:
            return []
        return [any(column) for column in zip(*self.exact)]

    def scalars(self, rows: list[dict]) -> dict:
        """TensorBoard's `eval/` curves: the fraction exact now, the fraction solved so far, and the mean of each
        of the task's metrics (board accuracy for Life) and the fraction of each of its flags."""
        summary = summarize(rows)
        solved = self.solved()
        scalars = {"eval/exact_fraction": summary["success_rate"],
                   "eval/solved_fraction": sum(solved) / len(solved)}
        for key, value in summary.items():
            if (key.endswith("_mean") or key.endswith("_fraction")) and key not in _NOT_LOGGED:
                scalars[f"eval/{key}"] = value
        return scalars

    def per_replica(self) -> list[dict]:
        """The keys each replica's row gets: `solved_at_step`, `exact_at_end`, `exact_at_steps`."""
        replicas = len(self.exact[0]) if self.exact else 0
        return [replica_record(self.steps, [exact[k] for exact in self.exact]) for k in range(replicas)]

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "exact": [list(e) for e in self.exact]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.steps = [int(s) for s in state_dict.get("steps", [])]
        self.exact = [[bool(e) for e in row] for row in state_dict.get("exact", [])]


def replica_record(steps: Sequence[int], exact: Sequence[bool]) -> dict:
    """One replica's record from its exactness at each evaluated step."""
    runs: list[list[int]] = []
    previous = False
    for step, now in zip(steps, exact):
        if now and previous:
            runs[-1][1] = step
        elif now:
            runs.append([step, step])
        previous = now
    return {
        "solved_at_step": runs[0][0] if runs else None,
        "exact_at_end": bool(exact[-1]) if len(exact) else False,
        "exact_at_steps": runs,
    }


def exact_at(row: dict, evaluated_steps: Sequence[int], step: int) -> bool | None:
    """Whether a replica (its row: `exact_at_steps`) was exact at `step`; None when `step` was not evaluated."""
    if step not in evaluated_steps or "exact_at_steps" not in row:
        return None
    return any(first <= step <= last for first, last in row["exact_at_steps"])


def evaluation_callbacks(trainer_config) -> list[pl.Callback]:
    """The held-out evaluation when the config asks for it (keys absent from an older config mean: off)."""
    every = trainer_config.get("eval_every_n_steps", 0)
    if not every:
        return []
    return [HeldOutEvaluation(every, trainer_config.max_steps, bool(trainer_config.get("stop_when_solved", False)))]


def held_out_evaluation(trainer: pl.Trainer) -> HeldOutEvaluation | None:
    return next((c for c in trainer.callbacks if isinstance(c, HeldOutEvaluation)), None)
