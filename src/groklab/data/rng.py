"""Independent random streams, one per generation stage.

Every stage draws from ``np.random.default_rng([seed, STAGE, *sub])``, so changing one stage
(e.g. the regime additions) never shifts the random numbers another stage sees: all regimes
built from one seed share the graph, the OOD split, the ID test and the sampled train inferred.
"""

from __future__ import annotations

import numpy as np

GRAPH = 0          # which relations each entity has, and their tails
OOD_SPLIT = 1      # which atomic facts are OOD
ID_TEST = 2        # which both-hop-ID chains are held out as ID test
TRAIN_SAMPLE = 3   # order in which the pool is sampled for train inferred
PROBES = 4         # probe subsamples (sub-stream per probe)
HOP1_EXPOSURE = 5  # regime additions exposing OOD facts as hop 1
HOP2_EXPOSURE = 6  # regime additions exposing OOD facts as hop 2
INJECT = 7         # new-knowledge set (sub-streams: pairs, tails, replay, probes)
SHUFFLE = 8        # claim 1's memoriser: the permutation of the training compositions' answers


def stream(seed: int, stage: int, *sub: int) -> np.random.Generator:
    """The random generator of one stage (and optional sub-stage)."""
    return np.random.default_rng([int(seed), stage, *sub])
