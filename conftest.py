"""Root conftest of this checkout: plant known bugs in our converters for a whole session.

``GCVERIFY_PLANT=name[,name...]`` in the environment applies those mutations of the catalogue
(``suites/planted_bugs.py``) in ``pytest_configure`` and removes them when the session ends,
so the verification matrix can be watched catching a bug::

    GCVERIFY_PLANT=bn_fold_no_eps pytest suites --gc-converters=bn_fold --gc-device=cpu

Why here: it must act before any test runs, in every process. pytest-xdist workers inherit
the environment and run ``pytest_configure`` themselves, so ``-n 2`` plants in each of them
(the controller plants too, harmlessly: it runs no cases). An unknown name is a usage error
listing the known ones, before anything is patched; the report header says what is planted.
Without the variable nothing is imported: every other session pays nothing for this file.
"""
import os
import pathlib
import sys

import pytest

ENV = "GCVERIFY_PLANT"
_ROOT = pathlib.Path(__file__).resolve().parent
_PLANTED = pytest.StashKey()  # the names planted in this session


def pytest_configure(config):
    requested = os.environ.get(ENV, "").strip()
    if not requested:
        return
    if str(_ROOT) not in sys.path:  # the catalogue is imported as suites.planted_bugs
        sys.path.insert(0, str(_ROOT))
    from suites.planted_bugs import UnknownPlantedBug, plant
    try:
        stack = plant(requested)
    except UnknownPlantedBug as e:
        raise pytest.UsageError("{}: {}".format(ENV, e)) from None
    config.add_cleanup(stack.close)
    config.stash[_PLANTED] = [n.strip() for n in requested.split(",") if n.strip()]


def pytest_report_header(config):
    planted = config.stash.get(_PLANTED, None)
    if planted:
        return "{}: planted bugs {} (the converters are deliberately wrong)".format(ENV, ", ".join(planted))
    return None

