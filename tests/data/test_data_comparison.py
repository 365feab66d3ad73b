"""The comparison task: labels follow the attribute values; OOD entities never in training."""

import numpy as np
import pytest

from groklab.data import PROBES, data_config, flags as F, make_dataset
from groklab.errors import GroklabError


@pytest.fixture(scope="module")
def comp(tmp_path_factory):
    cfg = data_config("tiny", task="comparison", entities=40, relations=6, values=5, ood_ratio=0.1,
                      phi=4.0, id_test_ratio=0.05)
    return make_dataset(cfg, tmp_path_factory.mktemp("comp") / "ds")


def test_vocab_and_atomic_facts(comp):
    E, A, V = 40, 6, 5
    assert comp.vocab[3 + E + A:] == [f"<v_{v}>" for v in range(V)] + ["<lt>", "<eq>", "<gt>"]
    at = comp.atomic
    assert at.shape == (E * A, 4)
    assert len({(h, r) for h, r, *_ in at.tolist()}) == E * A
    assert np.all((at[:, 2] >= 3 + E + A) & (at[:, 2] < 3 + E + A + V))
    ood = (at[:, 3] & F.HOP1_OOD) != 0
    assert ood.sum() == A * round(0.1 * E)  # per attribute
    assert comp.split_names == ["train", *PROBES]


def test_labels_and_splits(comp):
    E, A, V = 40, 6, 5
    value = {(h, r): t for h, r, t, _ in comp.atomic.tolist()}
    ood = {(h, r) for h, r, t, fl in comp.atomic.tolist() if fl & F.HOP1_OOD}
    lt = 3 + E + A + V
    seen = {}
    for name in comp.split_names:
        s = comp.split(name)
        for (a, e1, e2), n, t, b, fl in zip(s.tokens.tolist(), s.length.tolist(), s.target.tolist(),
                                            s.bridge.tolist(), s.flags.tolist()):
            if n == 2:
                assert value[(a, e1)] == t and e2 == 0
                continue
            assert e1 != e2 and b == -1
            v1, v2 = value[(e1, a)], value[(e2, a)]
            assert t == lt + (0 if v1 < v2 else 1 if v1 == v2 else 2)
            assert bool(fl & F.HOP1_OOD) == ((e1, a) in ood) and bool(fl & F.HOP2_OOD) == ((e2, a) in ood)
            seen.setdefault(name, set()).add((a, e1, e2))
            if name in ("train", "train_inferred", "test_inferred_iid"):
                assert not fl & (F.HOP1_OOD | F.HOP2_OOD)
            if name == "test_inferred_ood":
                assert fl & F.HOP1_OOD and fl & F.HOP2_OOD
    assert not seen["test_inferred_iid"] & seen["train"]
    assert seen["train_inferred"] <= seen["train"]
    n_id_atomic = A * (E - 4)
    assert len(seen["train"]) == round(4.0 * n_id_atomic)
    assert len(seen["test_inferred_ood"]) == A * 4 * 3
    st = comp.manifest["stats"]
    assert st["pool"] == A * 36 * 35 and st["id_test"] == round(0.05 * st["pool"])
    assert sum(st["label_counts_train"].values()) == len(seen["train"])


def test_comparison_rejects_regimes_and_too_large_phi(tmp_path):
    with pytest.raises(GroklabError, match="regime='both_full' is invalid"):
        make_dataset(data_config("tiny", task="comparison", regime="both_full"), tmp_path / "a")
    with pytest.raises(GroklabError, match=r"phi=500\.0 is invalid \(allowed: \[0, "):
        make_dataset(data_config("tiny", task="comparison", phi=500.0), tmp_path / "b")
    assert not list(tmp_path.iterdir())
