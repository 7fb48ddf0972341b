"""The architecture is a contract: the layers in pyproject.toml hold, a planted upward import
breaks them, and loading the plugin (which pytest does in every project that has gcverify
installed) imports neither nnabla nor any converter."""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
LINT = pathlib.Path(sys.executable).parent / "lint-imports"


def _lint(cwd, pythonpath=None):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(LINT), "--no-cache"], cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def tree(tmp_path):
    """A copy of the packages and pyproject.toml to plant violations in."""
    for package in ("gcverify", "converters"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("gcverify/core/expectations.py", "from gcverify.plugin import session  # planted",
     "gcverify.core.expectations -> gcverify.plugin.session"),
    ("gcverify/verify/numeric.py", "def _planted():\n    from ..builtin import BUILTIN  # a hidden upward import",
     "gcverify.verify.numeric -> gcverify.builtin"),
    ("converters/graph_view.py", "from converters import rewrite  # planted",
     "converters.graph_view -> converters.rewrite"),
    ("converters/rewrite.py", "import gcverify.core  # planted", "converters.rewrite -> gcverify.core"),
    ("converters/quant_math.py", "import nnabla  # planted", "converters.quant_math -> nnabla"),
    ("gcverify/report/table.py", "from . import baseline  # planted: baseline -> files -> row, not table",
     "no import cycle"),
])
def test_a_planted_violation_breaks_a_contract(tree, module, line, broken):
    path = tree / module
    text = path.read_text()
    if "no import cycle" in broken:  # close a cycle: baseline already reaches table's siblings
        (tree / "gcverify/report/files.py").write_text(
            (tree / "gcverify/report/files.py").read_text() + "\nfrom . import table  # planted\n")
    path.write_text(text + "\n" + line + "\n")
    result = _lint(tree, pythonpath=tree)
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout, result.stdout


def test_importing_the_plugin_imports_no_nnabla_and_no_converter():
    code = ("import sys, gcverify, gcverify.plugin, gcverify.plugin.fixtures\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('nnabla', 'converters'))\n"
            "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_pytest_run_that_does_not_use_gcverify_never_imports_nnabla(pytester):
    pytester.makepyfile(test_plain="""
        import sys

        def test_plain():
            assert 1 + 1 == 2

        def test_zz_nothing_heavy_was_imported():
            assert not [m for m in sys.modules if m.split('.')[0] in ('nnabla', 'converters')]
    """)
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["plugins:*gcverify*"])  # the plugin was loaded
    result.assert_outcomes(passed=2)
