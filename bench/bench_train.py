"""Training throughput of groklab's decoder against plain Hugging Face GPT-2 loops.

For each shape (layers x width) it times full training steps (forward, backward, grad clip,
AdamW) on the same batch of two-hop queries (h r1 r2 -> t) of the paper-scale graph
(E=2000, R=200) and prints examples/s:

  groklab        groklab's decoder + training step (task vocabulary: 3 + E + R = 2203 tokens,
                 input h r1 r2, ``answer_forward``: last block, norm and unembedding at the
                 answer position only; loss there)
  hf-reference   GPT2LMHeadModel as the references trained it: GPT-2's 50257 BPE rows plus 2206
                 task tokens, input "h r1 r2 t </a>", HF's own masked LM loss on t and </a>
  hf-task-vocab  GPT2LMHeadModel with groklab's vocabulary, input and loss (isolates the
                 implementation from the vocabulary set-up)

plus the matmul FLOP/s each row reaches (FLOPs counted by torch's FlopCounterMode on one
step) as a fraction of this CPU's one-thread peak, measured in the same run with a large
matmul. ``transformers`` is optional: without it the HF rows are skipped with a message.

Usage: python bench/bench_train.py [--shapes 2x128,4x256] [--batch 256] [--seconds 6]
       [--threads 1] [--device cpu|cuda] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from groklab.models import ModelConfig, build_model
from groklab.train.optim import build_optimizer

E, R = 2000, 200
TASK_VOCAB = 3 + E + R          # <pad> <mask> </a> + entities + relations
GPT2_BPE = 50257
REFERENCE_TASK_TOKENS = 2206    # the references' added tokens (entities, relations, markers)


def peak_matmul_flops(device: torch.device, n: int = 2048, seconds: float = 3.0) -> float:
    """Best FLOP/s of an n x n fp32 matmul over repeated trials."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        _sync(device)
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        _sync(device)
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - t))
    return best


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def batch(batch_size: int, device, seed: int = 0):
    """Random two-hop queries in groklab's token ids: (ids (B,3), target (B,))."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(3, 3 + E, (batch_size,), generator=g)
    r = torch.randint(3 + E, TASK_VOCAB, (batch_size, 2), generator=g)
    t = torch.randint(3, 3 + E, (batch_size,), generator=g)
    return torch.stack([h, r[:, 0], r[:, 1]], 1).to(device), t.to(device)


def groklab_step(layers: int, width: int, batch_size: int, device):
    torch.manual_seed(0)
    cfg = ModelConfig(family="decoder", n_layers=layers, d_model=width, n_heads=max(1, width // 64),
                      max_len=4, dropout=0.0)
    model = build_model(cfg, TASK_VOCAB).to(device)
    opt = build_optimizer(model, (0.9, 0.999), 1e-8, 0.1)
    ids, target = batch(batch_size, device)
    pos = torch.full((batch_size,), 2, device=device)
    params = list(model.parameters())

    def step():  # as groklab.train.loop.Trainer.train_step
        logits = model.answer_forward(ids, pos)
        loss = model.loss(logits.float(), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step(1e-4)
        opt.zero_grad()
    return step, sum(p.numel() for p in params)


def hf_step(layers: int, width: int, batch_size: int, device, reference: bool):
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    transformers.logging.set_verbosity_error()
    vocab = GPT2_BPE + REFERENCE_TASK_TOKENS if reference else TASK_VOCAB
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=8, n_embd=width, n_layer=layers,
                     n_head=max(1, width // 64), resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=0, eos_token_id=2 if not reference else GPT2_BPE + 2)
    model = GPT2LMHeadModel(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    ids, target = batch(batch_size, device)
    if reference:  # "h r1 r2 t </a>" with the task tokens after GPT-2's BPE rows
        end = torch.full_like(target, 2)
        seq = torch.cat([ids, target[:, None], end[:, None]], 1) + GPT2_BPE
        labels = seq.clone()
        labels[:, :3] = -100
    params = list(model.parameters())

    def step():
        if reference:
            loss = model(input_ids=seq, labels=labels).loss
        else:
            logits = model(input_ids=ids).logits[:, -1]
            loss = F.cross_entropy(logits.float(), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step, sum(p.numel() for p in params)


def measure(step, device, seconds: float) -> tuple[float, float]:
    """(steps/s, matmul FLOPs per step)."""
    for _ in range(3):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        if n % 5 == 0:
            _sync(device)
            if time.perf_counter() - t0 >= seconds and n >= 10:
                break
    _sync(device)
    return n / (time.perf_counter() - t0), flops


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="2x128,4x256", help="comma-separated LAYERSxWIDTH (e.g. 8x768)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=6.0, help="timed seconds per row")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = None

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"# bench_train: torch {torch.__version__}, transformers {hf_version or 'not installed'}, "
          f"python {platform.python_version()}, {device.type} ({name}), {args.threads} thread(s), "
          f"batch {args.batch}, two-hop queries of E={E}, R={R}")
    peak = peak_matmul_flops(device)
    print(f"# peak: {peak / 1e9:.1f} GFLOP/s (2048^3 fp32 matmul, best of repeated trials)")
    if hf_version is None:
        print("# transformers is not installed: HF rows skipped (pip install transformers, or .[hf])")
    print(f"{'shape':>7} {'row':<14} {'params':>11} {'steps/s':>8} {'examples/s':>11} "
          f"{'GFLOP/step':>10} {'% of peak':>9} {'groklab x':>9}")
    results = []
    for shape in args.shapes.split(","):
        layers, width = (int(x) for x in shape.lower().split("x"))
        rows = [("groklab", lambda: groklab_step(layers, width, args.batch, device))]
        if hf_version:
            rows += [("hf-reference", lambda: hf_step(layers, width, args.batch, device, True)),
                     ("hf-task-vocab", lambda: hf_step(layers, width, args.batch, device, False))]
        base = None
        for row_name, build in rows:
            step, n_params = build()
            sps, flops = measure(step, device, args.seconds)
            del step
            eps = sps * args.batch
            base = base or eps
            frac = sps * flops / peak
            results.append({"shape": shape, "row": row_name, "params": n_params, "steps_per_s": sps,
                            "examples_per_s": eps, "flops_per_step": flops, "fraction_of_peak": frac,
                            "groklab_speedup": base / eps})
            print(f"{shape:>7} {row_name:<14} {n_params:>11,} {sps:>8.1f} {eps:>11.0f} "
                  f"{flops / 1e9:>10.2f} {100 * frac:>8.1f}% {base / eps:>8.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_flops": peak, "torch": torch.__version__, "transformers": hf_version,
                       "device": name, "threads": args.threads, "batch": args.batch,
                       "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
