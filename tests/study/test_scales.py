"""The study scales: the CLI lists exactly the defined scales, and cpu_l6 differs from cpu
only in the TRM's depth, schedule and budgets (the data and the decoder stay the cpu scale's)."""

from groklab.commands.study import SCALE_NAMES
from groklab.study.scales import SCALES, get_scale


def test_cli_lists_every_scale():
    assert tuple(SCALE_NAMES) == tuple(SCALES)


def test_cpu_l6_is_the_cpu_scale_with_the_studys_trm_depth():
    cpu, l6 = get_scale("cpu"), get_scale("cpu_l6")
    assert l6.data == cpu.data and l6.inject == cpu.inject
    assert l6.models["decoder"] == cpu.models["decoder"]
    assert l6.optim["decoder"] == cpu.optim["decoder"]
    assert l6.steps_for("decoder", "natural") == cpu.steps_for("decoder", "natural")
    trm, trm_cpu = l6.models["recursive"], cpu.models["recursive"]
    assert trm["l_cycles"] == 6 and trm_cpu["l_cycles"] == 1
    assert {k: v for k, v in trm.items() if k != "l_cycles"} == \
        {k: v for k, v in trm_cpu.items() if k != "l_cycles"}
    assert l6.optim["recursive"]["schedule"] == "cosine"
