"""scripts/dev.sh, the README's entry point: clear answers before anything is installed."""
import pathlib
import shutil
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parent.parent.parent / "scripts" / "dev.sh"


def _run(script, *args, home, candidates=None):
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "GC_PYTHON": str(home / "no-python")}
    if candidates is not None:  # where the script looks for Python 3.10 after $GC_PYTHON
        env["GC_PYTHON_CANDIDATES"] = " ".join(candidates)
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_missing_python310_is_a_clear_error_and_installs_nothing(tmp_path):
    project = tmp_path / "p"  # a copy with no .venv, seen without pyenv or python3.10 on PATH
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts" / "dev.sh")
    shutil.copy(SCRIPT.parent.parent / "pyproject.toml", project / "pyproject.toml")
    not_310 = [sys.executable] if sys.version_info[:2] != (3, 10) else []
    result = _run(project / "scripts" / "dev.sh", "test", home=tmp_path,
                  candidates=[str(tmp_path / "nowhere" / "python3.10"), "/bin/true"] + not_310)
    assert result.returncode == 2
    assert "Python 3.10 not found" in result.stderr and "GC_PYTHON" in result.stderr
    assert not (project / ".venv").exists()


def test_unknown_job_prints_usage(tmp_path):
    result = _run(SCRIPT, "deploy", home=tmp_path)
    assert result.returncode == 2 and "usage: scripts/dev.sh {verify|test|bench|setup}" in result.stderr
