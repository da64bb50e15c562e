"""Life-like cellular automata and the task of predicting them."""

from overparam.tasks.life.rules import Rule, parse_rule
from overparam.tasks.life.simulate import life_run, life_step, sample_boards
from overparam.tasks.life.task import LifeTask

__all__ = ["LifeTask", "Rule", "life_run", "life_step", "parse_rule", "sample_boards"]
