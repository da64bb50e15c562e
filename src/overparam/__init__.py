"""overparam: how wide must a network be before gradient descent reliably finds a solution that exists?"""

from .tasks.life import life_step, parse_rule

__all__ = ["life_step", "parse_rule", "maxcut_qubo"]


def __getattr__(name):
    # networkx is only imported when the QUBO task is used.
    if name == "maxcut_qubo":
        from .tasks.maxcut.qubo import maxcut_qubo

        return maxcut_qubo
    raise AttributeError(name)
