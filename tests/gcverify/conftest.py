"""Fixtures of the gcverify tests."""
import pytest

from gcverify.report.row import Row


@pytest.fixture
def row():
    """A factory of plausible matrix rows: ``row("identity", outcome="xfailed", speed_ratio=2.0)``."""
    def row(conv="bn_fold", model="lenet", device="cpu", outcome="passed", **kw):
        r = dict(converter=conv, model=model, device=device,
                 outcome=outcome, machine="m1", functions_before=12, functions_after=9,
                 histogram_before={"Convolution": 2, "BatchNormalization": 3},
                 histogram_after={"Convolution": 2}, removed={"BatchNormalization": 3}, added={},
                 max_abs_error=3e-6, max_rel_error=1e-5, normalized_error=1e-6, rms_error=1e-7,
                 tolerance="rtol=0.0001", tolerance_preset="float32", conversion_time=0.01, speed_ratio=1.2)
        r.update(kw)
        return Row("{}-{}-{}".format(conv, model, device), **r)
    return row
