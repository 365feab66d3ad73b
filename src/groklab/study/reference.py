"""The study's published numbers (study.md section 6), shown beside ours in the report.

These are quoted, never computed: they are the reference a reproduction is judged against.
Values are the study's TRM runs at E=2000, phi=18, counted in optimizer steps.
"""

from __future__ import annotations

SOURCE = ("He et al., 'Is Grokking Worthwhile?' (arXiv 2601.09049), TRM, E=2000, phi=18; "
          "as summarised in study.md section 6")

# regime -> (train >= .99, bridge found, OOD answer, end of training)
PRETRAIN = {
    "natural": ("106k", ">=.9 at 311k", ">=.5 at 396k", "max .86, unstable"),
    "both_full": ("60k", ">=.9 at 60k", ".996 at 45k", "~1.0"),
    "both_half": ("136k", "mostly low", "plateau .45-.49", ".49"),
    "first_hop": ("95k", ">=.9 at 73k", "~0 until 500k, .98 at 1.2M", "collapses to .22"),
    "second_hop": ("80k", "never >=.9 (~.4)", ">=.9 at 677k", ".97 (fake grokking)"),
}

# What the study reads as fake grokking in the table above.
FAKE_GROKKING = {
    "natural": "no (slow, unstable real grokking)",
    "both_full": "no (circuit and accuracy together)",
    "both_half": "no (neither reaches .9)",
    "first_hop": "circuit without accuracy (bridge >=.9 at 73k, OOD ~0 until 500k)",
    "second_hop": "accuracy without circuit (OOD .97, bridge ~.4)",
}

# Transfer after finetuning on new facts: category -> {pretraining regime or 'scratch': text}
TRANSFER = {
    "atomic_new": "~1.0 within ~3k steps (all models)",
    "new_old": "1.0 for natural / both_full / first_hop; ~0.3 second_hop; 0.3-0.4 scratch",
    "old_new": "~0 for all",
    "new_new": "~0 for all (even where the lens decodes b)",
}

# Claim 4 (compute): augmented data vs natural grokking.
COMPUTE = ("both_full: OOD .996 at 45k steps; natural: OOD >=.5 only at 396k (max .86); "
           "natural grokking needs 300k-1.3M steps")

# Claim 1 is stated qualitatively in the study ("identical inference paths").
SAME_PATH = "identical inference paths for grokked and fully supervised models (qualitative)"
