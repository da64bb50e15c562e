"""Life-like cellular automata and the task of predicting them."""

from .rules import Rule, parse_rule
from .simulate import life_run, life_step, sample_boards
from .task import LifeTask

__all__ = ["LifeTask", "Rule", "life_run", "life_step", "parse_rule", "sample_boards"]
