"""groklab.analysis: logit lens, causal tracing, path comparison and transfer probes.

Modules (see docs/analysis.md): ``queries`` (two-hop queries as model input), ``lens``
(``lens_ranks``, ``summarize_lens``, ``lens_metrics``, ``lens_callback``), ``counterfactual``
(``build_counterfactuals``), ``tracing`` (``trace_grid``, ``prepare_counterfactuals``,
``summarize_trace``), ``compare`` (``compare_models``), ``transfer`` (``transfer_metrics``,
``transfer_callback``), ``plots`` (matplotlib Agg), ``io`` (run specs, loading, outputs).
Nothing is imported here, so ``import groklab.analysis.lens`` stays light.
"""
