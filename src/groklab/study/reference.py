"""The study's published numbers, shown beside ours in the report.

These are quoted, never computed: they are the reference a reproduction is judged against.
Values are the study's TRM runs at E=2000, phi=18, counted in optimizer steps, from the printed
outputs of the authors' notebooks (study.md section 9, which supersedes section 6 where they
differ). Their "bridge" and "OOD answer" are both logit-lens rates with the study's rule (the
token is the top-1 decode at any stage and any position), not exact-match accuracy.
"""

from __future__ import annotations

SOURCE = ("He et al., 'Is Grokking Worthwhile?' (arXiv 2601.09049, ACL Findings 2026), TRM, "
          "E=2000, phi=18; notebook outputs as summarised in study.md section 9")

# regime -> (train >= .95, bridge found >= .95, OOD answer (lens target found), end of training)
PRETRAIN = {
    "natural": ("63.6k", "325k", "peak .739 at 566k, never .9", ".683 at 1.34M"),
    "both_full": ("45.0k", "67.5k", ">= .9 at 37.5k, 1.0 by 75k", "1.0"),
    "both_half": ("136k (section 6)", "mostly low (section 6)", "plateau .45-.49", ".49"),
    "first_hop": ("51.0k", "102k", ".5 at 744k, .9 at 1.06M", ".22 at 1.6M (collapse)"),
    "second_hop": ("50.9k", "never (max .65)", ".9 at 677k", ".968 at 1.6M"),
}

# What the study reads as fake grokking in the table above.
FAKE_GROKKING = {
    "natural": "no (slow, unstable real grokking)",
    "both_full": "no (circuit and accuracy together)",
    "both_half": "no (neither reaches .9)",
    "first_hop": "circuit without accuracy (bridge >= .95 at 102k, OOD answer .5 only at 744k)",
    "second_hop": "accuracy without circuit (OOD answer .968, bridge never above .65)",
}

# Transfer after finetuning on new facts: category -> text (EM at finetune step 39,040;
# bridge found in brackets; n = queries)
TRANSFER = {
    "atomic_new": "~1.0 within ~3k finetune steps (every model)",
    "new_old": "natural 1.00 (n=16), both_full 1.00 (26), first_hop 1.00 (33), second_hop .33 "
               "(33), both_half .53 (36), scratch .31 (16)",
    "old_new": "0.00 for every model (n=18-35), although the lens finds b (natural 1.0)",
    "new_new": ".000-.003 for every model (n=3,000), lens finds b on .985 (natural)",
}

# Claim 4 (compute): augmented data vs natural grokking.
COMPUTE = ("both_full: OOD answer >= .9 at 37.5k steps, 1.0 by 75k; natural: peak .739 at 566k, "
           "never .9; the study: a few percent more compositional data reaches in ~45k steps "
           "what natural grokking needs 300k-1.3M steps for")

# Claim 1: the study's non-grokked model is both_full at training saturation (study.md s. 9).
SAME_PATH = ("the both_full TRM (fully supervised, converges without a long grokking phase) "
             "recovers the bridge on every correct OOD prediction, and its transfer to new facts "
             "equals the naturally grokked model's (their Fig. 4): 'functionally equivalent'")
