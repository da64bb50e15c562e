"""The docs a user reads: the README stays a guide, every link resolves, and the configuration reference is the one
the code generates."""

import os
import re
import subprocess
import sys

from helpers import ROOT, TINY, run_py
from overparam.config.reference import reference

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_configuration_reference_is_the_generated_one():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference(), "stale: python -m overparam.config.reference > docs/configuration.md"


def test_every_link_in_the_readme_and_docs_resolves_to_a_file_in_the_repo():
    for page in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).resolve().exists(), f"{page.name}: {target}"


def test_the_readme_is_a_guide_of_at_most_300_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


def _readme_commands() -> list[list[str]]:
    """The README's quick-start commands that run overparam (`.venv/bin/python ...`), as argument lists."""
    commands = []
    for line in (ROOT / "README.md").read_text().splitlines():
        line = line.strip().split("#")[0].strip()
        if ".venv/bin/python run.py" in line or line.startswith(".venv/bin/python -m overparam.report"):
            commands.append(line.split(".venv/bin/python ", 1)[1].split())
    return commands


def test_the_readmes_quick_start_commands_run_with_tiny_budgets(tmp_path):
    """The main job, the card's sweep and the report, as the README types them, with tiny budgets and folders of
    the test's own: the front door cannot silently break."""
    commands = _readme_commands()
    assert [c[:2] for c in commands[:3]] == [["run.py"], ["run.py", "-m"], ["-m", "overparam.report"]], commands
    tiny = [*TINY, "trials=2", "trainer.max_steps=20"]
    main_job, sweep, report = commands[:3]
    run_py(*main_job[1:], *tiny, f"hydra.run.dir={tmp_path / 'job'}")
    assert (tmp_path / "job" / "result.json").exists()
    run_py(*sweep[1:], *tiny, f"hydra.sweep.dir={tmp_path / 'multirun/life'}")
    assert len(list((tmp_path / "multirun/life").glob("*/result.json"))) == 9
    completed = subprocess.run([sys.executable, *report], cwd=tmp_path, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert completed.returncode == 0, completed.stderr
    assert "9 jobs, 9 grid points" in completed.stdout and (tmp_path / "multirun/life/success_vs_width.png").exists()
