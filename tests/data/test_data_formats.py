"""Reference-format export/import: lossless round trip, malformed input named precisely."""

import json

import numpy as np
import pytest

from groklab.data import (data_config, export_reference, import_reference, inject_dataset,
                          load_dataset, make_dataset)
from groklab.errors import GroklabError


@pytest.mark.parametrize("regime, ood_ratio", [("natural", 0.05), ("both_half", 0.05), ("both_full", 0.0)])
def test_round_trip_preserves_every_item_and_flag(tmp_path, regime, ood_ratio):
    ds = make_dataset(data_config("tiny", regime=regime, phi=5.4, ood_ratio=ood_ratio), tmp_path / "ds")
    export_reference(ds.path, tmp_path / "ref")
    items = json.loads((tmp_path / "ref" / "train.json").read_text())
    assert len(items) == len(ds.split("train"))
    q = ds.split("train_inferred")
    text = ds.decode(q.tokens[0][:3])
    assert any(it["input_text"] == text for it in items)
    assert {"input_text", "target_text"} == set(items[0])
    valid = json.loads((tmp_path / "ref" / "valid.json").read_text())
    test = json.loads((tmp_path / "ref" / "test.json").read_text())
    assert [v["input_text"] for v in valid] == [t["input_text"] for t in test if t["type"] == "test_inferred_ood"]
    back = import_reference(tmp_path / "ref", tmp_path / "back")
    assert back.vocab == ds.vocab and back.split_names == ds.split_names
    assert np.array_equal(back.atomic, ds.atomic)
    for name in ds.split_names:
        assert np.array_equal(back.split(name).rows(), ds.split(name).rows()), name
    assert back.config["regime"] == ("imported" if ds.manifest["stats"]["added_hop1"] else "natural")
    assert back.config["phi"] == pytest.approx(5.4)


def test_round_trip_of_an_injected_set_is_exact(tmp_path):
    src = make_dataset(data_config("tiny", entities=60, relations=10, out_degree=5, phi=2.0,
                                   regime="both_full"), tmp_path / "src")
    inj = inject_dataset(src.path, tmp_path / "inj", new_facts=50, replay=300)
    export_reference(inj.path, tmp_path / "ref")
    back = import_reference(tmp_path / "ref", tmp_path / "back")
    assert np.array_equal(back.atomic, inj.atomic)
    for name in inj.split_names:
        assert np.array_equal(back.split(name).rows(), inj.split(name).rows()), name
    assert np.any(back.split("train").flags & 32)  # replayed augmented items stay AUGMENTED


def test_import_without_atomic_json_recovers_ood_from_probes(tmp_path):
    """Wang et al.'s directories have no atomic.json: OOD facts come from the probe types."""
    ds = make_dataset(data_config("tiny", regime="first_hop", phi=3.6), tmp_path / "ds")
    export_reference(ds.path, tmp_path / "ref")
    (tmp_path / "ref" / "atomic.json").unlink()
    back = import_reference(tmp_path / "ref", tmp_path / "back")
    assert np.array_equal(back.atomic, ds.atomic)
    for name in ds.split_names:
        assert np.array_equal(back.split(name).rows(), ds.split(name).rows()), name


def _ref_dir(tmp_path, train=None, test=None, vocab=None):
    d = tmp_path / "ref"
    d.mkdir(exist_ok=True)
    vocab = vocab or ["<e_0>", "<e_1>", "<e_2>", "<r_0>", "<r_1>", "<mask>", "</a>"]
    train = train if train is not None else [
        {"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>"},
        {"input_text": "<e_1><r_1>", "target_text": "<e_1><r_1><e_2></a>"},
        {"input_text": "<e_0><r_0><r_1>", "target_text": "<e_0><r_0><r_1><e_2></a>"},
    ]
    test = test if test is not None else [
        {"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>", "type": "id_atomic"}]
    for name, obj in (("vocab.json", vocab), ("test.json", test), ("valid.json", [])):
        (d / name).write_text(json.dumps(obj))
    (d / "train.json").write_text(train if isinstance(train, str) else json.dumps(train))
    return d


def test_import_of_a_handmade_directory(tmp_path):
    ds = import_reference(_ref_dir(tmp_path), tmp_path / "out")
    tr = ds.split("train")
    assert ds.vocab == ["<pad>", "<mask>", "</a>", "<e_0>", "<e_1>", "<e_2>", "<r_0>", "<r_1>"]
    assert tr.bridge.tolist() == [-1, -1, 4] and tr.target.tolist() == [4, 5, 5]
    assert ds.split("id_atomic").tokens.tolist() == [[3, 6, 0]]


@pytest.mark.parametrize("train, message", [
    ('[{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>"}, {"input_text": }]',
     r"train\.json item 1: not valid JSON"),
    ([{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>"}, {"input_text": "<e_9><r_0>",
      "target_text": "<e_9><r_0><e_1></a>"}], r"train\.json item 1: input_text='<e_9><r_0>' is invalid"),
    ([{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_1><e_1></a>"}],
     r"train\.json item 0: target_text=.* is invalid"),
    ([{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>"},
      {"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_2></a>"}], r"item \d: .* contradicts"),
    ([{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>"},
      {"input_text": "<e_0><r_0><r_0>", "target_text": "<e_0><r_0><r_0><e_2></a>"}],
     r"train\.json item 1: the query .* does not follow"),
    ('{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>"}\n{"input_text"\n',
     r"train\.json item 1 \(line 2\): not valid JSON"),
])
def test_malformed_import_names_file_and_item(tmp_path, train, message):
    with pytest.raises(GroklabError, match=message):
        import_reference(_ref_dir(tmp_path, train=train), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_import_rejects_bad_types_and_vocab(tmp_path):
    bad_type = [{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>", "type": "Bad Type"}]
    with pytest.raises(GroklabError, match=r"test\.json item 0: type='Bad Type' is invalid"):
        import_reference(_ref_dir(tmp_path, test=bad_type), tmp_path / "out")
    with pytest.raises(GroklabError, match=r"<e_0> \.\. <e_\{n-1\}> without gaps"):
        import_reference(_ref_dir(tmp_path, vocab=["<e_0>", "<e_2>", "<r_0>", "<r_1>"]), tmp_path / "out")
    with pytest.raises(GroklabError, match="vocab.json is missing"):
        import_reference(tmp_path / "empty", tmp_path / "out")


def test_export_refuses_to_overwrite(tmp_path):
    ds = make_dataset(data_config("tiny", entities=20, relations=4, out_degree=2, phi=1.0), tmp_path / "ds")
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "keep.txt").write_text("mine")
    with pytest.raises(GroklabError, match="already exists"):
        export_reference(ds.path, tmp_path / "ref")
    assert (tmp_path / "ref" / "keep.txt").read_text() == "mine"
    assert load_dataset(ds.path)
