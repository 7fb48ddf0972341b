"""A converter that changed nothing on any model of the session gets a line after the table."""
from gcverify.report.row import Row
from gcverify.report.table import vacuous


def _row(converter, model, changed, added=0):
    return Row("{}-{}-cpu".format(converter, model), converter=converter, model=model, device="cpu",
               outcome="passed", functions_changed=changed, functions_added=added)


def test_a_converter_idle_on_every_model_is_named():
    rows = [_row("bn_fold_opposite", m, 0) for m in ("lenet", "unet", "mobilenet")]
    rows += [_row("bn_fold", "lenet", 6), _row("bn_fold", "unet", 0)]
    assert vacuous(rows) == ["vacuous: bn_fold_opposite changed nothing on any of the 3 models "
                             "(lenet, mobilenet, unet): its rows prove nothing"]


def test_adding_counts_as_changing_and_crashed_rows_do_not_count():
    rows = [_row("statistics", "lenet", 0, added=4), Row("x-lenet-cpu", converter="x", model="lenet")]
    assert vacuous(rows) == []


def test_identity_by_design_is_not_reported():
    rows = [_row("identity", "lenet", 0)]
    assert vacuous(rows, idle_by_design={"identity"}) == []
    assert vacuous(rows)[0].startswith("vacuous: identity changed nothing on any of the 1 model ")


def test_the_new_fields_survive_the_json_round_trip():
    row = _row("low_rank_energy", "lenet", 3)
    row.update(dict(new_parameters=4, gradient_mismatches=0, low_rank_layers=2, low_rank_bound=0.99,
                    discarded_energy=0.08))
    assert Row.from_json(row.to_json()) == row
