"""Training throughput of groklab's step against plain Hugging Face GPT-2 loops (issue 7, target 3).

For each decoder shape (layers x width) it times whole training steps (forward, backward, grad
clip, AdamW) on batches of the paper-scale graph's training split (E=2000, R=200) and prints
examples/s, FLOPs per step and the fraction of this machine's measured matmul peak:

  groklab            groklab's own training step (``Trainer.train_step``: on-device batch
                     sampling, the last block and the unembedding at the answer position only,
                     loss on the answer token), float32
  groklab-full       the same step, but logits at every position (``answer_logits(model(ids))``,
                     the pre-issue-7 path): isolates the answer-position lever
  groklab-bf16       the groklab step under bf16 autocast (``train.amp=bf16``)
  groklab-compile    the groklab step with ``train.compile=true`` (only with --compile)
  hf-reference       GPT2LMHeadModel as the references trained it: GPT-2's 50257 BPE rows plus
                     2206 task tokens, input "q... t </a>", HF's own LM loss on t and </a>
  hf-task-vocab      GPT2LMHeadModel over groklab's 2203-token vocabulary, same inputs and
                     answer-token loss as groklab (isolates the implementation)
  hf-task-vocab-bf16 the same under bf16 autocast

The peak is the best FLOP/s of square float32 (and bf16) matmuls measured in the same run
(before and after each shape), on the same thread count; a row's fraction is (matmul FLOPs of
one step, counted by torch's FlopCounterMode) x steps/s / peak of the row's precision. On a CPU
times are this thread's CPU time (one torch thread runs every op on the calling thread, so
waiting for a core that other jobs share is not counted); the rows of a shape are timed in
round-robin windows and each row's speed is its best window (the median is printed too).
``--paper`` adds paper-scale steps/s of the ``paper`` (8 x 768 decoder) and ``paper_recursive``
(TRM) presets at batch 512 (meant for a GPU; slow on a CPU), with ``--compile`` also compiled
(``train.compile``: on CUDA the forward + backward replay as CUDA graphs).

Usage: python bench/bench_throughput.py [--quick] [--shapes 2x128,4x256,8x768] [--batch 256]
       [--seconds 4] [--threads 1] [--device cpu|cuda] [--rows ...] [--compile] [--paper]
       [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

try:
    import groklab  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from groklab.data import data_config, load_dataset, make_dataset
from groklab.models import answer_logits
from groklab.train import config_from_dict, load_config
from groklab.train.batching import BatchSampler
from groklab.train.trainer import Trainer

GPT2_BPE = 50257
REFERENCE_TASK_TOKENS = 2206    # the references' added tokens (entities, relations, markers)
END_ID = 2                      # groklab's </a>
ALL_ROWS = ["groklab", "groklab-full", "groklab-bf16", "groklab-compile", "hf-reference",
            "hf-task-vocab", "hf-task-vocab-bf16"]
DEFAULT_ROWS = [r for r in ALL_ROWS if r != "groklab-compile"]


# ---------------------------------------------------------------------------- machine

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_matmul_flops(device: torch.device, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """Best FLOP/s over square matmuls of a few sizes (repeated trials, same thread count,
    timed with :func:`clock`)."""
    sizes = (1024, 2048) if device.type == "cpu" else (4096, 8192)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        end = time.perf_counter() + seconds / len(sizes)
        while time.perf_counter() < end:
            t = clock(device)
            for _ in range(3):
                a @ b
            best = max(best, 3 * 2 * n ** 3 / (clock(device) - t))
    return best


# ---------------------------------------------------------------------------- data and rows

def bench_dataset(cache: Path, paper: bool = True):
    """The paper graph (E=2000, R=200), phi=1 (inputs are 3 tokens wide at any phi)."""
    path = cache / "paper-phi1"
    if (path / "manifest.json").is_file():
        return load_dataset(path)
    return make_dataset(data_config("paper", phi=1.0), path, force=True)


def run_config(layers: int, width: int, batch: int, device: str, data_path: Path, **train):
    return config_from_dict({
        "data_path": str(data_path),
        "model": {"family": "decoder", "n_layers": layers, "d_model": width,
                  "n_heads": max(1, width // 64), "max_len": 4, "dropout": 0.0},
        "optim": {"lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.1, "grad_clip": 1.0},
        "train": {"batch_size": batch, "device": device, "threads": 0, "amp": "none", **train},
    })


def groklab_row(name: str, layers: int, width: int, batch: int, device: torch.device, dataset):
    train = {"amp": "bf16"} if name == "groklab-bf16" else {}
    if name == "groklab-compile":
        train["compile"] = True
    cfg = run_config(layers, width, batch, device.type, dataset.path, **train)
    torch.manual_seed(0)
    trainer = Trainer(cfg, dataset, device, Path(tempfile.gettempdir()) / "bench-unused", quiet=True)
    trainer.model.train()
    if name == "groklab-full":  # the pre-issue-7 path: logits at every position
        model = trainer.model
        model.answer_forward = lambda ids, pos: answer_logits(model(ids), pos)
    n_params = sum(p.numel() for p in trainer.params)
    return trainer.train_step, n_params, "bf16" if name == "groklab-bf16" else "fp32"


def reference_sequences(data) -> tuple[torch.Tensor, torch.Tensor]:
    """The references' format of every training row: "q... t </a>" after GPT-2's BPE rows,
    labels on t and </a> only (width 5; atomic rows end with one pad)."""
    n = len(data)
    rows = torch.arange(n, device=data.input_ids.device)
    seq = torch.zeros((n, data.input_ids.shape[1] + 2), dtype=torch.int64, device=rows.device)
    seq[:, :data.input_ids.shape[1]] = data.input_ids
    seq[rows, data.answer_pos + 1] = data.target
    seq[rows, data.answer_pos + 2] = END_ID
    labels = torch.full_like(seq, -100)
    labels[rows, data.answer_pos + 1] = data.target
    labels[rows, data.answer_pos + 2] = END_ID
    return seq + GPT2_BPE, labels


def hf_row(name: str, layers: int, width: int, batch: int, device: torch.device, dataset):
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    from groklab.train.evaluate import to_batchable

    transformers.logging.set_verbosity_error()
    reference = name == "hf-reference"
    bf16 = name.endswith("-bf16")
    vocab = GPT2_BPE + REFERENCE_TASK_TOKENS if reference else dataset.vocab_size
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=8, n_embd=width, n_layer=layers,
                     n_head=max(1, width // 64), resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=0, eos_token_id=END_ID + (GPT2_BPE if reference else 0))
    model = GPT2LMHeadModel(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1)
    data = to_batchable(dataset.split("train"), "causal", device)
    if reference:
        seq, labels = reference_sequences(data)
    sampler = BatchSampler(len(data), batch, 0, device)
    params = list(model.parameters())

    def step():
        idx = sampler.next()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if reference:
                loss = model(input_ids=seq[idx], labels=labels[idx]).loss
            else:
                logits = model(input_ids=data.input_ids[idx]).logits
                loss = F.cross_entropy(answer_logits(logits, data.answer_pos[idx]).float(), data.target[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step, sum(p.numel() for p in params), "bf16" if bf16 else "fp32"


def paper_row(preset: str, batch: int, device: torch.device, cache: Path, compile_: bool):
    """A paper preset's own training step (its model, optimizer and amp) on the paper graph."""
    cfg = load_config(preset, [f"data_path={bench_dataset(cache).path}", f"train.batch_size={batch}",
                               f"train.device={device.type}", "train.threads=0",
                               f"train.compile={str(compile_).lower()}"])
    torch.manual_seed(0)
    trainer = Trainer(cfg, load_dataset(cfg.data_path), device,
                      Path(tempfile.gettempdir()) / "bench-unused", quiet=True)
    trainer.model.train()
    amp = "bf16" if trainer.use_amp else "fp32"
    return trainer.train_step, sum(p.numel() for p in trainer.params), amp


# ---------------------------------------------------------------------------- timing

def clock(device: torch.device) -> float:
    """CPU: this thread's CPU time (with one torch thread every op runs on it, so time spent
    waiting for a core shared with other jobs is not counted); CUDA: wall time after a sync."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter()
    return time.thread_time()


def prepare(step, device: torch.device, warmup: int = 2, flops: int | None = None) -> dict:
    """Warm a step up (compilation, allocator) and count the matmul FLOPs of one step, unless
    ``flops`` is given (a compiled step: FlopCounterMode would make torch.compile recompile and
    leave CUDA graphs, so it takes the count of the same step uncompiled)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    per_step = (time.perf_counter() - t0) / warmup
    if flops is None:
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
    return {"flops_per_step": flops, "warmup_s": per_step * warmup,
            "window": max(1, min(20, int(0.4 / max(per_step, 1e-4)))), "times": []}


def measure_interleaved(steps: dict, preps: dict, device: torch.device, seconds: float,
                        min_steps: int) -> None:
    """Round-robin timing windows over the rows (so a burst of load from other jobs hits every
    row alike) until each row had ``seconds`` of windows and ``min_steps`` steps; fills
    steps_per_s (best window) and steps_per_s_median into ``preps``."""
    spent = {name: 0.0 for name in steps}
    done = {name: 0 for name in steps}
    while any(spent[n] < seconds or done[n] < min_steps for n in steps):
        for name, step in steps.items():
            if spent[name] >= seconds and done[name] >= min_steps:
                continue
            w = preps[name]["window"]
            t = clock(device)
            for _ in range(w):
                step()
            dt = clock(device) - t
            preps[name]["times"].append(dt / w)
            spent[name] += dt
            done[name] += w
    for name, m in preps.items():
        m["steps_per_s"] = 1 / min(m["times"])
        m["steps_per_s_median"] = 1 / statistics.median(m["times"])
        m["timed_steps"] = done[name]
        del m["times"]


def peak_flops(device: torch.device, seconds: float = 2.0) -> dict:
    """Float32 and bf16 matmul peaks (FLOP/s) of this device and thread count."""
    return {"fp32": peak_matmul_flops(device, torch.float32, seconds),
            "bf16": peak_matmul_flops(device, torch.bfloat16, seconds)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="2x128,4x256,8x768",
                    help="comma-separated LAYERSxWIDTH decoder shapes ('' = none, e.g. with --paper)")
    ap.add_argument("--batch", type=int, default=256, help="examples per step (default 256)")
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds per row (default 4)")
    ap.add_argument("--min-steps", type=int, default=3, help="at least this many timed steps per row")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    ap.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                    help="comma-separated rows, from: " + ", ".join(ALL_ROWS))
    ap.add_argument("--compile", action="store_true", help="add the groklab-compile row "
                    "(torch.compile; its compile time, ~1 min per shape on a 2-core CPU, is not timed)")
    ap.add_argument("--paper", action="store_true", help="add paper-scale steps/s of the paper "
                    "and paper_recursive presets at batch 512 (meant for a GPU)")
    ap.add_argument("--quick", action="store_true", help="shapes 2x128,4x256, 2 s per row")
    ap.add_argument("--cache", default=None, help="dataset cache directory (default: a temp dir)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.shapes, args.seconds = "2x128,4x256", 2.0
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if args.compile and "groklab-compile" not in rows:
        rows.insert(3, "groklab-compile")
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    if hf_version is None:
        rows = [r for r in rows if not r.startswith("hf-")]

    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    dataset = bench_dataset(cache)
    name = device_name(device)
    print(f"# bench_throughput: {time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, "
          f"transformers {hf_version or 'not installed (HF rows skipped)'}, python "
          f"{platform.python_version()}, {device.type}: {name}, {args.threads} thread(s), "
          f"batch {args.batch}, paper graph (vocab {dataset.vocab_size})")
    peaks = peak_flops(device)
    print(f"{'shape':>7} {'row':<19} {'params':>11} {'steps/s':>8} {'(median)':>8} {'examples/s':>10} "
          f"{'GFLOP/step':>10} {'% of peak':>9} {'vs hf-ref':>9} {'vs hf-task':>10}")
    results = []
    for shape in [x for x in args.shapes.split(",") if x.strip()]:
        layers, width = (int(x) for x in shape.lower().split("x"))
        steps, preps, info = {}, {}, {}
        for row in rows:
            build = hf_row if row.startswith("hf-") else groklab_row
            if row == "groklab-compile":
                torch._dynamo.reset()  # a fresh compile per shape (no recompile limit reached)
            steps[row], n_params, precision = build(row, layers, width, args.batch, device, dataset)
            same = preps.get("groklab") if row == "groklab-compile" else None  # same FLOPs, uncompiled
            flops = same["flops_per_step"] if same else None
            preps[row] = prepare(steps[row], device, flops=flops)
            info[row] = (n_params, precision)
        measure_interleaved(steps, preps, device, args.seconds, args.min_steps)
        del steps
        again = peak_flops(device, 1.0)  # the peak again: keep the best seen in this run
        peaks = {k: max(v, again[k]) for k, v in peaks.items()}
        shape_rows = []
        for row, m in preps.items():
            n_params, precision = info[row]
            m.update(shape=shape, row=row, params=n_params, precision=precision,
                     examples_per_s=m["steps_per_s"] * args.batch)
            shape_rows.append(m)
        by_row = {m["row"]: m for m in shape_rows}
        for m in shape_rows:
            m["fraction_of_peak"] = m["steps_per_s"] * m["flops_per_step"] / peaks[m["precision"]]
            for ref, key in (("hf-reference", "vs_hf_reference"), ("hf-task-vocab", "vs_hf_task_vocab")):
                base = by_row.get(ref if m["precision"] == "fp32" or ref == "hf-reference" else ref + "-bf16")
                m[key] = m["examples_per_s"] / base["examples_per_s"] if base else None
            fmt = lambda x: f"{x:>8.2f}x" if x is not None else f"{'-':>9}"  # noqa: E731
            print(f"{shape:>7} {m['row']:<19} {m['params']:>11,} {m['steps_per_s']:>8.2f} "
                  f"{m['steps_per_s_median']:>8.2f} {m['examples_per_s']:>10.0f} "
                  f"{m['flops_per_step'] / 1e9:>10.2f} {100 * m['fraction_of_peak']:>8.1f}% "
                  f"{fmt(m['vs_hf_reference'])} {fmt(m['vs_hf_task_vocab']):>10}", flush=True)
        results += shape_rows
    if args.paper:
        print("# paper-scale presets, batch 512, their own recipe (amp auto = bf16 on CUDA)")
        for preset, compiled in [(p, c) for p in ("paper", "paper_recursive")
                                 for c in ((False, True) if args.compile else (False,))]:
            if compiled:
                torch._dynamo.reset()
            step, n_params, precision = paper_row(preset, 512, device, cache, compiled)
            m = prepare(step, device, flops=results[-1]["flops_per_step"] if compiled else None)
            measure_interleaved({preset: step}, {preset: m}, device, args.seconds, args.min_steps)
            del step
            m.update(shape=preset, row=preset + ("-compile" if compiled else ""), params=n_params,
                     precision=precision, examples_per_s=m["steps_per_s"] * 512,
                     fraction_of_peak=m["steps_per_s"] * m["flops_per_step"] / peaks[precision])
            results.append(m)
            print(f"{preset:>16} {precision}{' compiled' if compiled else ''}: {n_params:,} params, "
                  f"{m['steps_per_s']:.2f} steps/s (median {m['steps_per_s_median']:.2f}), "
                  f"{m['flops_per_step'] / 1e9:.1f} GFLOP/step, {100 * m['fraction_of_peak']:.1f}% of "
                  f"{precision} peak (compile/warm-up {m['warmup_s']:.0f} s, untimed)", flush=True)
    print(f"# matmul peak (best seen in this run): fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, "
          f"bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"date": time.strftime("%Y-%m-%d %H:%M"), "peaks": peaks, "torch": torch.__version__,
             "transformers": hf_version, "device": name, "threads": args.threads,
             "batch": args.batch, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
