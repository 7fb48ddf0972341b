"""Fixtures of the planted-bug suite: this process's in-process matrix
(:mod:`suites.planted_bugs_hunt`), built once and reused by every bug it hunts."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # the catalogue is imported as suites.planted_bugs
    sys.path.insert(0, str(ROOT))

from suites.planted_bugs_hunt import Matrix  # noqa: E402  (after the path above)

_MATRIX = []


@pytest.fixture
def matrix():
    """This process's :class:`Matrix` (built on first use, then reused)."""
    if os.environ.get("GCVERIFY_PLANT"):
        pytest.skip("GCVERIFY_PLANT is set: the converters are planted for the whole session")
    if not _MATRIX:
        _MATRIX.append(Matrix())
    return _MATRIX[0]

