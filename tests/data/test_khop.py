"""k-hop composition data (docs/data.md, "k-hop composition") against a plain-Python oracle."""

import json
from collections import Counter

import numpy as np
import pytest

from groklab.cli import main
from groklab.data import DataConfig, data_config, export_reference, flags as F, make_dataset
from groklab.data import khop
from groklab.data.graph import make_graph
from groklab.data import rng as streams

# manifest_sha256 of datasets made by main's code (9b602e7) BEFORE k-hop data existed: the
# digest covers every file's sha256, so equal digests = byte-identical datasets.
MAIN_DIGESTS = [
    ({}, "1321cca1d9055830342246b90b5b06dde6971fcd2de211a9496152e8b0721904"),
    ({"regime": "both_full", "phi": 7.2}, "419208b427f2feed25cd11496659999ca2957becc797f11172b7e86dcf3a17d1"),
    ({"entities": 30, "relations": 6, "out_degree": 4, "phi": 2.0, "seed": 3},
     "7b714a9b06d76178105598fcc87f5a3f83151022d4a7e69919a06a0e2f6a0bb3"),
    ({"task": "comparison", "entities": 40, "relations": 3, "phi": 3.0},
     "beb21a7e690f5e274bc4c92ca2da1d28ad165a814fb8c3d8b07582b9313b6810"),
]
SMALL = dict(entities=30, relations=6, out_degree=4, ood_ratio=0.25, phi=2.0, seed=3)


@pytest.mark.parametrize("overrides, digest", MAIN_DIGESTS)
def test_default_two_hop_datasets_are_byte_identical_to_main(tmp_path, overrides, digest):
    ds = make_dataset(data_config("tiny", **overrides), tmp_path / "d")
    assert ds.manifest["manifest_sha256"] == digest
    assert ds.manifest["columns"] == ["in0", "in1", "in2", "length", "target", "bridge", "flags"]


def test_hops_2_alone_writes_the_two_hop_files(tmp_path):
    plain = make_dataset(data_config("tiny"), tmp_path / "a")
    two = make_dataset(data_config("tiny", hops=(2,), ood_rule="all"), tmp_path / "b")
    assert two.manifest["files"] == plain.manifest["files"]
    assert two.manifest["config"]["hops"] == [2] and "hops" not in plain.manifest["config"]


def test_the_two_hop_part_of_a_khop_dataset_is_todays_data(tmp_path):
    """hops [2] + held-out 3: the two-hop splits are exactly those of the plain dataset."""
    plain = make_dataset(data_config("tiny"), tmp_path / "a")
    k = make_dataset(data_config("tiny", test_hops=(3,)), tmp_path / "b")
    assert k.max_hops == 3 and k.manifest["columns"][-2:] == ["bridge2", "flags"]
    for name in plain.split_names:
        a, b = plain.split(name), k.split(name)
        assert np.array_equal(a.tokens, b.tokens[:, :3]) and np.all(b.tokens[:, 3] == 0)
        for col in ("length", "target", "bridge", "flags"):
            assert np.array_equal(getattr(a, col), getattr(b, col)), (name, col)
    assert k.split("heldout_iid_h3").length.tolist() == [4] * len(k.split("heldout_iid_h3"))


class KOracle:
    """Plain dicts from atomic.npy: (h, r) -> t, OOD facts; walks a query fact by fact."""

    def __init__(self, ds):
        self.tail, self.ood = {}, set()
        for h, r, t, fl in ds.atomic.tolist():
            self.tail[(h, r)] = t
            if fl & F.HOP1_OOD:
                self.ood.add((h, r))

    def walk(self, tokens):
        """(target, bridges, per-hop OOD list) of query tokens h r1 .. rk."""
        e, bridges, ood = tokens[0], [], []
        for r in tokens[1:]:
            assert (e, r) in self.tail, f"no fact ({e}, {r}): the chain is not in the graph"
            ood.append((e, r) in self.ood)
            e = self.tail[(e, r)]
            bridges.append(e)
        return e, bridges[:-1], ood

    def check_split(self, ds, name):
        """Every item's chain exists, target/bridges/flags follow; returns [(k, ood list)]."""
        s = ds.split(name)
        out = []
        for tok, n, t, b, bs, fl in zip(s.tokens.tolist(), s.length.tolist(), s.target.tolist(),
                                         s.bridge.tolist(), s.bridges.tolist(), s.flags.tolist()):
            assert all(x == 0 for x in tok[n:])
            target, bridges, ood = self.walk(tok[:n])
            k = n - 1
            assert target == t
            if k == 1:
                assert b == -1 and (fl & F.HOP1_OOD != 0) == ood[0]
                out.append((1, ood))
                continue
            assert bs[:k - 1] == bridges and all(x == -1 for x in bs[k - 1:]) and b == bridges[0]
            assert fl & F.INFERRED
            assert [bool(fl & F.hop_ood(i + 1)) for i in range(k)] == ood
            assert fl & ~(F.INFERRED | F.ood_hops_mask(k)) == 0
            out.append((k, ood))
        return out


def _queries(ds, name):
    s = ds.split(name)
    return {tuple(tok[:n]) for tok, n in zip(s.tokens.tolist(), s.length.tolist())}


@pytest.mark.parametrize("rule", ["all", "any"])
@pytest.mark.parametrize("limit", [khop.ENUM_LIMIT, 50])  # 50: every k >= 3 pool is sampled
def test_khop_invariants_against_the_oracle(tmp_path, monkeypatch, rule, limit):
    monkeypatch.setattr(khop, "ENUM_LIMIT", limit)
    cfg = DataConfig(**SMALL, hops=(2, 3), test_hops=(4, 5), ood_rule=rule)
    ds = make_dataset(cfg, tmp_path / "d")
    oracle = KOracle(ds)
    n_id = ds.manifest["stats"]["id_atomic_facts"]
    per_hop = ds.manifest["stats"]["per_hop"]
    train = oracle.check_split(ds, "train")
    counts = Counter(k for k, _ in train)
    assert counts[1] == len(ds.atomic)
    assert set(counts) == {1, 2, 3}  # held-out hop counts are never trained
    for k in (2, 3):
        assert counts[k] == round(2.0 * n_id) == per_hop[str(k)]["train_inferred"]  # phi per hop
        assert per_hop[str(k)]["mode"] == ("enumerated" if k == 2 or limit > 10**6 else "sampled")
    assert all(not any(ood) for k, ood in train if k > 1)  # trained compositions: all hops ID
    trained = _queries(ds, "train")
    for k in (2, 3):
        for name, want_ood in ((khop.train_probe(k), False), (khop.iid_probe(k), False),
                               (khop.ood_probe(k), True)):
            items = oracle.check_split(ds, name)
            assert items and all(kk == k for kk, _ in items), name
            for _, ood in items:
                if not want_ood:
                    assert not any(ood)
                else:
                    assert all(ood) if rule == "all" else any(ood)
        assert _queries(ds, khop.train_probe(k)) <= trained
        assert not _queries(ds, khop.iid_probe(k)) & trained  # the ID test is held out
        assert not _queries(ds, khop.ood_probe(k)) & trained
    for k in (4, 5):
        assert per_hop[str(k)]["heldout"]
        for name, want in ((khop.iid_probe(k, True), "id"), (khop.ood_probe(k, True), "ood")):
            items = oracle.check_split(ds, name)
            assert items and all(kk == k for kk, _ in items)
            for _, ood in items:
                assert (not any(ood)) if want == "id" else (all(ood) if rule == "all" else any(ood))
    for name in ds.probe_names:  # no probe repeats a query
        assert len(_queries(ds, name)) == len(ds.split(name)), name
    assert khop.hop_probes(ds.manifest)[5] == {"iid": "heldout_iid_h5", "ood": "heldout_ood_h5",
                                               "heldout": True}


def test_enumerated_pools_match_brute_force():
    """enumerate_chains and path counts against nested loops over the facts."""
    g = make_graph(12, 4, 2, streams.stream(5, streams.GRAPH))
    mask = np.random.default_rng(0).random(g.n_facts) < 0.7
    by_head = {}
    for f in range(g.n_facts):
        if mask[f]:
            by_head.setdefault(int(g.head[f]), []).append(f)
    for k in (1, 2, 3, 4):
        paths = [[f] for f in range(g.n_facts) if mask[f]]
        for _ in range(k - 1):
            paths = [p + [f] for p in paths for f in by_head.get(int(g.tail[p[-1]]), [])]
        got = khop.enumerate_chains(g, mask, k)
        assert got.tolist() == sorted(paths) and khop.n_chains(g, mask, k) == len(paths)


def test_sampled_chains_are_uniform():
    g = make_graph(6, 3, 2, streams.stream(1, streams.GRAPH))
    mask = np.ones(g.n_facts, bool)
    chains = khop.enumerate_chains(g, mask, 3)
    draw = khop.sample_chains(g, mask, 3, 40_000, np.random.default_rng(0), khop.path_counts(g, mask, 3))
    counts = Counter(map(tuple, draw.tolist()))
    assert set(counts) == set(map(tuple, chains.tolist()))
    expect = len(draw) / len(chains)
    assert max(abs(c - expect) for c in counts.values()) < 0.15 * expect


def test_same_config_same_bytes_and_phi_is_nested(tmp_path):
    cfg = DataConfig(**SMALL, hops=(3,), test_hops=(4,))
    a = make_dataset(cfg, tmp_path / "a")
    b = make_dataset(cfg, tmp_path / "b")
    assert a.manifest["manifest_sha256"] == b.manifest["manifest_sha256"]
    small = make_dataset(DataConfig(**{**SMALL, "phi": 1.0}, hops=(3,), test_hops=(4,)), tmp_path / "c")
    assert _queries(small, "train") <= _queries(a, "train")


def test_reference_export_writes_khop_items(tmp_path):
    ds = make_dataset(DataConfig(**SMALL, hops=(2, 3), test_hops=(4,)), tmp_path / "d")
    out = export_reference(ds.path, tmp_path / "ref")
    test = json.loads((out / "test.json").read_text())
    items = [i for i in test if i["type"] == "heldout_iid_h4"]
    s = ds.split("heldout_iid_h4")
    assert len(items) == len(s)
    first = items[0]
    assert first["input_text"] == ds.decode(s.tokens[0][:5])
    assert first["target_text"] == first["input_text"] + ds.vocab[s.target[0]] + "</a>"
    assert first["input_text"].count("<r_") == 4


@pytest.mark.parametrize("argv, message", [
    (["--hops", "1"], "hops=1 is invalid (allowed: [2, 8])"),
    (["--hops", "9"], "hops=9 is invalid (allowed: [2, 8])"),
    (["--hops", "2,x"], "hops='2,x' is invalid"),
    (["--hops", "3", "--test-hops", "2,3"], "test_hops='2,3' is invalid"),
    (["--hops", "3", "--ood-rule", "most"], "invalid choice: 'most'"),
    (["--hops", "3", "--task", "comparison"], "hops=(3,) is invalid"),
    (["--hops", "3", "--regime", "both_full"], "regime='both_full' is invalid"),
    (["--hops", "3", "--entities", "20", "--relations", "4", "--out-degree", "2", "--phi", "9"],
     "phi=9.0 is invalid"),
])
def test_bad_khop_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    code = None
    try:
        code = main(["data", "make", "--preset", "tiny", "--out", str(tmp_path / "d"), *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "d").exists()


def test_cli_make_mixed_hops_and_stats(tmp_path, capsys):
    out = tmp_path / "k"
    assert main(["data", "make", "--preset", "tiny", "--hops", "2,3", "--test-hops", "4", "--ood-rule",
                 "any", "--phi", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 hops (enumerated)" in text and "4 hops (held out" in text
