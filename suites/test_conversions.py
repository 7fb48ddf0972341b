"""The verification matrix: every registered converter x selected model x selected device.

The gcverify plugin parametrises ``gc_case`` from ``--gc-converters``, ``--gc-models`` and
``--gc-device`` (ids like ``bn_fold-resnet50-cpu``) and prints the table at the end::

    pytest suites -n 2 --gc-models=lenet,resnet50 --gc-device=cpu --gc-report=report.json
"""


def test_conversion(gc_case, gc_verify):
    gc_verify(gc_case)
