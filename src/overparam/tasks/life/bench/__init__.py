"""The Life benchmark: `python -m overparam.tasks.life.bench` (its `__main__`)."""
