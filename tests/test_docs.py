"""The docs a user reads: the README stays a guide, every link resolves, and the configuration reference is the one
the code generates."""

import re

from helpers import ROOT
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
