"""Every ``docs/<file>.md [section N]`` the code and READMEs cite exists in the repository, section
included, so a clone alone is complete (the background once lived outside the repository)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"docs/([\w-]+\.md)(?:,? (?:sections?|§) ((?:\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?(?:, | and |,)?)+))?")
HEADING = re.compile(r"^#+ (\d+(?:\.\d+)?)[. ]", re.M)


def citations() -> list[tuple[str, str, str | None]]:
    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.sh", "*.spec", "*.toml"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        if name.startswith("docs/") or not (ROOT / name).is_file():
            continue
        for m in CITATION.finditer((ROOT / name).read_text(errors="replace")):
            found.append((name, m.group(1), m.group(2)))
    return found


def test_cited_docs_and_sections_exist() -> None:
    cited = citations()
    assert len({doc for _, doc, _ in cited}) >= 4  # the check reads the citations at all
    wrong = []
    for source, doc, sections in cited:
        path = ROOT / "docs" / doc
        if not path.is_file():
            wrong.append(f"{source}: docs/{doc} does not exist")
            continue
        headings = set(HEADING.findall(path.read_text()))
        for number in re.findall(r"\d+(?:\.\d+)?", sections or ""):
            if number not in headings:
                wrong.append(f"{source}: docs/{doc} has no section {number}")
    assert not wrong, "\n".join(wrong)
