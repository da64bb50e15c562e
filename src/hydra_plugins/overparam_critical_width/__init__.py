"""overparam's critical-width sweeper: `python run.py -m hydra/sweeper=critical_width` (critical_width_sweeper.py)."""
