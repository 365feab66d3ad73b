"""The study scales: the CLI lists exactly the defined scales; cpu_l6 differs from cpu only in
the TRM's depth, schedule and budgets (the data and the decoder stay the cpu scale's), and
cpu_grok only in the TRM's weight decay and its natural budget."""

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


def test_cpu_l6_long_only_lengthens_the_trms_budgets():
    l6, long = get_scale("cpu_l6"), get_scale("cpu_l6_long")
    assert long.models == l6.models and long.optim == l6.optim and long.data == l6.data
    assert long.eval_every == l6.eval_every and long.finetune_steps == l6.finetune_steps
    for regime in ("both_full", "both_half", "first_hop", "second_hop"):
        assert long.steps_for("recursive", regime) == 6000
        assert long.steps_for("decoder", regime) == l6.steps_for("decoder", regime)
    assert long.steps_for("recursive", "natural") == 8500
    assert long.steps_for("recursive", "supervised") == l6.steps_for("recursive", "supervised")


def test_cpu_grok_only_lowers_the_trms_weight_decay_and_lengthens_its_natural_run():
    from dataclasses import asdict
    cpu, grok = asdict(get_scale("cpu")), asdict(get_scale("cpu_grok"))
    trm, trm_cpu = grok["optim"].pop("recursive"), cpu["optim"].pop("recursive")
    assert trm["weight_decay"] == 0.1 and trm_cpu["weight_decay"] == 1.0
    assert {k: v for k, v in trm.items() if k != "weight_decay"} == \
        {k: v for k, v in trm_cpu.items() if k != "weight_decay"}
    grok.pop("name"), cpu.pop("name")
    nat, nat_cpu = (d["source_steps"].pop("recursive") for d in (grok, cpu))
    assert nat == {"natural": 10_000} and nat_cpu == {"natural": 7500}
    assert grok == cpu          # data, models, the decoder's recipe, other budgets, checkpoints
