"""Run a tiny sweep, load it as a DataFrame, and draw a plot of your own from it.

    python examples/plot_sweep.py [OUT_DIR]     # about a minute on 2 cores; writes OUT_DIR/my_plot.png
"""

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import overparam  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "multirun/example").resolve()
repo = Path(__file__).resolve().parents[1]
subprocess.run([sys.executable, str(repo / "run.py"), "-m", "model.m_factor=1,4", "task.steps=1,2", "trials=2",
                "trainer.max_steps=200", "task.batch_size=32", "trainer.progress=none", f"hydra.sweep.dir={out}"],
               check=True, cwd=repo)

# The plot: one row per replica, so any grouping is a pandas one-liner.
replicas = overparam.load_sweep(out)
rates = replicas.groupby(["task.steps", "model.m_factor"])["board_accuracy"].mean().unstack(0)
axis = rates.plot(marker="o", logx=True, title="mean board accuracy per replica")
axis.set_xlabel("width factor m")
plt.savefig(out / "my_plot.png", dpi=100)
print(f"{len(replicas)} replicas -> {out / 'my_plot.png'}")
