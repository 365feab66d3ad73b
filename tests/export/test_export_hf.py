"""Hugging Face export: a GPT2LMHeadModel whose logits equal groklab's."""

import json
import subprocess
import sys

import pytest
import torch

from groklab.data.vocab import SPECIALS, entity_token, relation_token
from groklab.errors import GroklabError
from groklab.export.hf import export_model_hf, export_run_hf
from groklab.models import ModelConfig, build_model, make_inputs

VOCAB = SPECIALS + [entity_token(i) for i in range(12)] + [relation_token(j) for j in range(5)]


def _randomized(cfg: ModelConfig):
    """A model with every parameter perturbed, so that a wrong mapping of any tensor (biases
    and LayerNorms start at 0/1) changes the logits."""
    torch.manual_seed(0)
    model = build_model(cfg, len(VOCAB)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


@pytest.fixture
def transformers():
    return pytest.importorskip("transformers")


def _load(transformers, path):
    model, info = transformers.GPT2LMHeadModel.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    return model.eval()


@pytest.mark.parametrize("family, extra", [
    ("decoder", {}),
    ("decoder", {"tie_embeddings": False, "d_mlp": 48, "n_layers": 3}),
    ("looped", {"n_loops": 3}),
])
def test_exported_logits_equal_groklab(tmp_path, transformers, family, extra):
    cfg = ModelConfig(**{"family": family, "n_layers": 2, "d_model": 32, "n_heads": 4, "max_len": 4, **extra})
    model = _randomized(cfg)
    export_model_hf(model, VOCAB, tmp_path / "hf")
    hf = _load(transformers, tmp_path / "hf")
    assert hf.config.n_layer == cfg.n_layers * (cfg.n_loops if family == "looped" else 1)
    ids = torch.randint(3, len(VOCAB), (16, 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(ids), hf(ids).logits
    assert ours.abs().max() > 1.0                       # not a degenerate comparison
    torch.testing.assert_close(theirs, ours, atol=2e-5, rtol=1e-5)


def test_run_export_cli_matches_the_checkpoint_and_tokenizer(tmp_path, transformers, decoder_run):
    from groklab.train import evaluate, load_model

    out = tmp_path / "hf"
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", "export", str(decoder_run), "--format", "hf",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    model, dataset = load_model(decoder_run)
    hf = _load(transformers, out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    meta = json.loads((out / "groklab.json").read_text())
    assert meta["exported_from"]["step"] == 120
    for split in ("id_atomic", "test_inferred_iid"):
        s = dataset.split(split)
        ids, answer_pos = make_inputs(s.tokens, s.length, layout="causal")
        with torch.no_grad():
            ours, theirs = model(ids), hf(ids).logits
        torch.testing.assert_close(theirs, ours, atol=2e-5, rtol=1e-5)
        hf_acc = (theirs[torch.arange(len(s)), answer_pos].argmax(-1) == torch.as_tensor(s.target)).float().mean()
        assert hf_acc.item() == pytest.approx(evaluate(model, dataset, [split])[split])
        # the tokenizer maps the dataset's text back to the same ids
        text = " ".join(dataset.vocab[t] for t in s.tokens[0][: s.length[0]])
        assert tok(text)["input_ids"] == [int(t) for t in s.tokens[0][: s.length[0]]]
    assert tok.pad_token_id == 0 and tok.eos_token == "</a>" and tok.mask_token == "<mask>"
    with pytest.raises(Exception, match="UNK|unk"):
        tok("<e_0> not-a-token")                         # unknown words are errors, not silent ids


def test_only_gpt2_shaped_models_export(tmp_path):
    rec = build_model(ModelConfig(family="recursive", d_model=32, n_heads=4, max_len=4), len(VOCAB))
    with pytest.raises(GroklabError, match=r"model\.family='recursive' is invalid for --format hf"):
        export_model_hf(rec, VOCAB, tmp_path / "a")
    looped = build_model(ModelConfig(family="looped", d_model=32, n_heads=4, max_len=4, step_embedding=True),
                         len(VOCAB))
    with pytest.raises(GroklabError, match=r"model\.step_embedding=True is invalid"):
        export_model_hf(looped, VOCAB, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_export_refuses_to_overwrite_and_bad_steps(tmp_path, decoder_run):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(GroklabError, match="already exists and is not empty"):
        export_run_hf(decoder_run, out)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(GroklabError, match=r"step=7 is invalid"):
        export_run_hf(decoder_run, tmp_path / "x", step=7)
    export_run_hf(decoder_run, tmp_path / "at40", step=40)
    assert json.loads((tmp_path / "at40" / "groklab.json").read_text())["exported_from"]["step"] == 40
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", "export", str(tmp_path / "nope"), "--format",
                           "hf", "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
