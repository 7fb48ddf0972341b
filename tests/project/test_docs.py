"""The documents point at things that exist: every ``file.py::test_name`` they cite as the
test backing a claim is a test of a file with that name, and every relative link resolves."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md"] + list((ROOT / "docs").glob("*.md")))


def _tests_by_file():
    found = {}
    for path in (ROOT / "tests").rglob("*.py"):
        for name in re.findall(r"^\s*def (test_\w+)", path.read_text(), re.M):
            found.setdefault(path.name, set()).add(name)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_cited_test_exists(doc):
    tests = _tests_by_file()
    cited = re.findall(r"(\w+\.py)::(test_\w+)", doc.read_text())
    missing = ["{}::{}".format(f, t) for f, t in cited if t not in tests.get(f, ())]
    assert not missing, "{} cites tests that do not exist: {}".format(doc.name, ", ".join(missing))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text())
    missing = [link for link in links if not (doc.parent / link).exists()]
    assert not missing, "{} links to missing files: {}".format(doc.name, ", ".join(missing))
