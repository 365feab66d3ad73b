"""The Trainer: all state of one run on one device, and the loop over it.

``train_run`` (train.loop) builds one after validating the config and the run directory; the
Trainer trains, evaluates (one metrics row per evaluation, summary.json rewritten each time),
checkpoints and, on resume, restores every piece of state (weights, EMA, optimizer, Grokfast,
batch order, RNG, the running loss), so on CPU a resumed run's metrics equal an uninterrupted
run's (wall time aside).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from groklab.data import Dataset
from groklab.errors import GroklabError
from groklab.models import build_model, describe
from groklab.train import checkpoints as ck
from groklab.train import metrics as mx
from groklab.train import rundir
from groklab.train.batching import BatchSampler
from groklab.train.config import RunConfig, checkpoint_schedule, stop_targets
from groklab.train.ema import WeightEMA
from groklab.train.evaluate import evaluate_batchables, to_batchable
from groklab.train.grokfast import build_filter
from groklab.train.optim import build_optimizer, lr_at
from groklab.train.perp import perp_grad_
from groklab.train.plots import plot_run

COMPILE_BACKEND = "inductor"  # torch.compile backend of train.compile (tests use "aot_eager")
# train.compile on CUDA also replays the step's forward + backward as CUDA graphs (measured
# gains: docs/performance.md)
COMPILE_MODE = {"cuda": "reduce-overhead"}
# progress-bar names of the probes: plain words without spaces, so `name=value` pairs read
# unambiguously (other splits, train_inferred among them: its queries are comparisons or
# k-hop chains on some tasks, so no "2hop" there, show their own names)
SHORT_NAMES = {"id_atomic": "facts_id", "ood_atomic": "facts_ood",
               "test_inferred_iid": "test_id", "test_inferred_ood": "test_ood"}


def log(msg: str) -> None:
    """One progress line on stderr that does not break a progress bar."""
    tqdm.write(f"groklab train: {msg}", file=sys.stderr)


class Trainer:
    """All state of one run on one device, and the loop over it."""

    def __init__(self, cfg: RunConfig, dataset: Dataset, device: torch.device, run_dir: Path,
                 callbacks=(), quiet: bool = False, stoppers=()):
        self.cfg, self.dataset, self.device, self.run_dir = cfg, dataset, device, run_dir
        self.callbacks, self.quiet = tuple(callbacks), quiet
        t, o = cfg.train, cfg.optim
        torch.manual_seed(t.seed)
        self.model = build_model(cfg.model, dataset.vocab_size).to(device)
        self.ema = WeightEMA(self.model, o.ema_decay) if o.ema_decay > 0 else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = build_optimizer(self.model, o.betas, o.eps, o.weight_decay, o.optimizer,
                                   o.muon_momentum, o.muon_adjust_lr)
        self.filter = build_filter(o.grokfast, o.grokfast_alpha, o.grokfast_lamb, o.grokfast_window)
        layout = self.model.layout
        self.train_data = to_batchable(dataset.split("train"), layout, device, labels=True)
        self.probes = {n: to_batchable(dataset.split(n), layout, device) for n in dataset.probe_names}
        self.sampler = BatchSampler(len(self.train_data), t.batch_size, t.seed, device)
        self.stop_at = stop_targets(t.stop_at)
        self.checkpoint_every = checkpoint_schedule(t.checkpoint_every)
        known = ["train_acc", *self.probes]
        for name, _ in self.stop_at:
            if name not in known:
                raise GroklabError(f"train.stop_at={name!r} is invalid (allowed: {' | '.join(known)})")
        self.stoppers = list(stoppers)
        if t.stop_unless_forecast:
            # the forecaster's core is numpy over the metrics rows (groklab.forecast, no torch)
            from groklab.forecast.stop import ForecastStopper
            stopper = ForecastStopper(t.stop_unless_forecast, t.steps, t.forecast_model or None)
            if stopper.target.split not in known:
                raise GroklabError(f"train.stop_unless_forecast={t.stop_unless_forecast!r} is invalid "
                                   f"(allowed: a target on {' | '.join(known)})")
            self.stoppers.append(stopper)
        self.forward_loss = self._forward_loss
        if t.compile:
            # a fresh compiler state per run: sequential runs in one process (local sweep trials,
            # a study's stages) would otherwise hit dynamo's recompile limit (8) and silently run
            # eager; a run's compiled step is never shared with another live run
            torch._dynamo.reset()
            self.forward_loss = torch.compile(self._forward_loss, backend=COMPILE_BACKEND,
                                              mode=COMPILE_MODE.get(device.type))
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.loss_count = 0
        self.step = 0
        self.elapsed_before = 0.0
        self.rows: list[dict] = []

    # ------------------------------------------------------------------ set-up helpers
    @contextlib.contextmanager
    def threads(self):
        n = self.cfg.train.threads
        if self.device.type != "cpu" or n <= 0:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @property
    def use_amp(self) -> bool:
        amp = self.cfg.train.amp
        return amp == "bf16" or (amp == "auto" and self.device.type == "cuda")

    def autocast(self):
        if self.use_amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def eval_model(self):
        return self.ema.model if self.ema is not None else self.model

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        """One optimizer update on the next batch; no host synchronisation."""
        o = self.cfg.optim
        self.step += 1
        idx = self.sampler.next()
        batch = self.train_data
        if batch.labels is not None:  # the study format: every labelled position in the loss
            loss = self.forward_loss(batch.input_ids[idx], batch.answer_pos[idx],
                                     batch.target[idx], batch.labels[idx])
        else:
            loss = self.forward_loss(batch.input_ids[idx], batch.answer_pos[idx], batch.target[idx])
        loss.backward()
        if self.filter is not None:
            self.filter.apply(self.params)
        if o.perp_grad:  # after Grokfast, so the gradient the optimizer sees is the ⊥ one
            perp_grad_(self.params)
        if o.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, o.grad_clip, foreach=True)
        self.opt.step(self.lr(self.step))
        self.opt.zero_grad()
        if self.ema is not None:
            self.ema.update(self.model)
        self.loss_sum += loss.detach()
        self.loss_count += 1

    def _forward_loss(self, input_ids, answer_pos, target, labels=None) -> torch.Tensor:
        """Loss of one batch: logits at the answer positions only (``answer_forward``), or,
        with per-position ``labels``, at every labelled position."""
        with self.autocast():
            if labels is not None:
                return self.model.sequence_loss(self.model(input_ids).float(), labels)
            logits = self.model.answer_forward(input_ids, answer_pos)
        return self.model.loss(logits.float(), target)

    def lr(self, step: int) -> float:
        o = self.cfg.optim
        return lr_at(step, o.lr, o.warmup_steps, o.schedule, self.cfg.train.steps, o.min_lr_ratio)

    # ------------------------------------------------------------------ evaluation
    def evaluate_row(self, elapsed: float) -> dict:
        with torch.no_grad():
            norms = torch._foreach_norm([p.detach().float() for p in self.params])
            weight_norm = torch.linalg.vector_norm(torch.stack(norms))
        train_loss = self.loss_sum / max(1, self.loss_count)
        scalars = torch.stack([train_loss, weight_norm]).tolist()
        results = evaluate_batchables(self.eval_model, self.probes, self.cfg.train.eval_batch_size,
                                      self.autocast if self.use_amp else None)
        row = {"step": self.step, "time": round(elapsed, 3),
               "loss": scalars[0] if self.loss_count else None,
               "lr": self.lr(self.step) if self.step else 0.0,
               "weight_norm": scalars[1]}
        for name, (acc, loss) in results.items():
            row[f"acc/{name}"] = acc
            row[f"loss/{name}"] = loss
        row["train_acc"] = mx.train_acc(row)
        if self.callbacks:
            model = self.eval_model
            was_training = model.training
            model.eval()
            devices = [self.device] if self.device.type == "cuda" else []
            for cb in self.callbacks:
                with torch.random.fork_rng(devices=devices):  # callbacks must not shift training RNG
                    extra = cb(self.step, model, self.dataset, row)
                if extra:
                    row.update(extra)
            model.train(was_training)
        self.loss_sum.zero_()
        self.loss_count = 0
        return row

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, elapsed: float) -> None:
        tensors = ck.prefixed("model.", self.model.state_dict())
        if self.ema is not None:
            tensors.update(ck.prefixed("ema.", self.ema.model.state_dict()))
        tensors.update(ck.prefixed("optim.", self.opt.state_tensors()))
        if self.filter is not None:
            tensors.update(ck.prefixed("grokfast.", self.filter.state_tensors()))
        sampler_tensors, sampler_meta = self.sampler.state()
        tensors.update(ck.prefixed("sampler.", sampler_tensors))
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["loss.sum"] = self.loss_sum
        meta = {"time": elapsed, "loss_count": self.loss_count, "sampler": sampler_meta,
                "optim_steps": self.opt.steps, "torch": torch.__version__}
        ck.save_checkpoint(self.run_dir, self.step, tensors, meta)

    def restore(self, step: int, tensors: dict, meta: dict) -> None:
        self.model.load_state_dict(ck.unprefixed("model.", tensors))
        if self.ema is not None:
            self.ema.model.load_state_dict(ck.unprefixed("ema.", tensors))
        self.opt.load_state(ck.unprefixed("optim.", tensors), meta["optim_steps"])
        if self.filter is not None:
            self.filter.load_state({k: v.to(self.device) for k, v in ck.unprefixed("grokfast.", tensors).items()})
        self.sampler.load_state(ck.unprefixed("sampler.", tensors), meta["sampler"])
        torch.set_rng_state(tensors["rng.cpu"].cpu())
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
        self.loss_sum = tensors["loss.sum"].to(self.device, torch.float32).clone()
        self.loss_count = int(meta["loss_count"])
        self.step = step
        self.elapsed_before = float(meta["time"])

    # ------------------------------------------------------------------ the loop
    def run(self, resume: bool) -> dict:
        t = self.cfg.train
        metrics_path = rundir.metrics_path(self.run_dir)
        start_step = 0
        if resume:
            ck.remove_temp_files(self.run_dir)
            until = mx.resumable_step(mx.read_metrics(metrics_path), t.eval_every)
            found = ck.load_latest_good(self.run_dir, device=self.device, max_step=until)
            if ck.checkpoint_steps(self.run_dir)[-1:] > [until] and not self.quiet:
                log(f"{metrics_path} lacks evaluations after step {until}: resuming from a "
                    "checkpoint it covers")
            if found is not None:
                start_step, tensors, meta = found
                self.restore(start_step, tensors, meta)
                if not self.quiet:
                    log(f"resuming {self.run_dir} from step {start_step}")
            elif not self.quiet:
                log(f"no usable checkpoint in {self.run_dir}: starting from step 0")
            self.rows = [r for r in mx.read_metrics(metrics_path) if r["step"] <= start_step] if found else []
        mx.write_metrics(metrics_path, self.rows)
        if not self.quiet:
            log(describe(self.model) + f" on {self.device}; {len(self.train_data):,} training items")
        writer = mx.MetricsWriter(metrics_path)
        bar = tqdm(total=t.steps, initial=self.step, disable=self.quiet, unit="step",
                   dynamic_ncols=True, mininterval=0.5, file=sys.stderr, leave=True)
        t0 = time.perf_counter()
        elapsed = lambda: self.elapsed_before + time.perf_counter() - t0  # noqa: E731
        stopped = None
        try:
            if not self.rows:  # the initial evaluation
                self._record(self.evaluate_row(elapsed()), writer, bar)
                if ck.checkpoint_due(0, self.checkpoint_every):
                    self.checkpoint(elapsed())
            stopped = self._stop_reason()
            self.model.train()
            while stopped is None:
                with _deferred_sigint() as interrupted:  # step + eval + checkpoint stay whole
                    self.train_step()
                    bar.update(1)
                    if self.step % t.eval_every == 0 or self.step >= t.steps:
                        self._record(self.evaluate_row(elapsed()), writer, bar)
                        stopped = self._stop_reason()
                    if stopped is not None or ck.checkpoint_due(self.step, self.checkpoint_every):
                        self.checkpoint(elapsed())
                    elif interrupted:
                        self.checkpoint(elapsed())
                if interrupted and stopped is None:
                    log(f"interrupted at step {self.step}; checkpoint saved, continue with --resume")
                    raise KeyboardInterrupt
        finally:
            bar.close()
            writer.close()
        summary = mx.summarize(self.rows, stopped=stopped, finished=True, device=str(self.device))
        rundir.write_summary(self.run_dir, summary)
        if t.plots:
            plot_run(self.run_dir, self.rows)
        if not self.quiet:
            log(_final_line(summary))
        return summary

    def _record(self, row: dict, writer: mx.MetricsWriter, bar) -> None:
        self.rows.append(row)
        writer.append(row)
        rundir.write_summary(self.run_dir, mx.summarize(self.rows, device=str(self.device)))
        if not self.quiet:
            bar.set_postfix_str(bar_postfix(row), refresh=False)

    def _stop_reason(self) -> str | None:
        t, last = self.cfg.train, self.rows[-1]
        if last["loss"] is not None and not math.isfinite(last["loss"]):
            warnings.warn(f"training loss is {last['loss']} at step {self.step}; stopping", RuntimeWarning,
                          stacklevel=2)
            return "nonfinite"
        if self.stop_at and all((last.get(k if k == "train_acc" else f"acc/{k}") or 0) >= x
                                for k, x in self.stop_at):
            return "target"
        for stopper in self.stoppers:
            reason = stopper(self.rows)
            if reason:
                return reason
        if mx.plateaued(self.rows, t.early_stop_patience, t.early_stop_delta):
            return "early_stop"
        if self.step >= t.steps:
            return "max_steps"
        return None


@contextlib.contextmanager
def _deferred_sigint():
    """Hold a Ctrl-C that arrives during one training step until the step is complete, so the
    interrupt checkpoint is a consistent state. Yields a list that is non-empty if one came."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, previous)


def bar_postfix(row: dict) -> str:
    """The progress bar's text for a metrics row: ``loss=0.12 train=0.98 test_id=0.91 ...``."""
    accs = [f"{SHORT_NAMES.get(k[4:], k[4:])}={v:.2f}" for k, v in row.items()
            if k.startswith("acc/") and v is not None]
    train = [f"train={row['train_acc']:.2f}"] if row.get("train_acc") is not None else []
    loss = [f"loss={row['loss']:.3g}"] if row.get("loss") is not None else []
    return " ".join(loss + train + accs)


def _final_line(summary: dict) -> str:
    first = summary["first_step"]
    bits = [f"stopped at step {summary['steps']} ({summary['stopped']}) after {summary['wall_time']:.1f}s"]
    for key, step in first.items():
        if step is not None:
            bits.append(f"{key} at step {step}")
    return "; ".join(bits)
