"""The training loop: ``train_run(cfg, run_dir)`` trains, evaluates, checkpoints and resumes.

Order of work in a run directory (docs/architecture.md section 3): validate everything that can
be validated (config, device, an existing dataset's checksums), take the run lock, write
config.yaml, generate the dataset into ``RUN/data`` when no ``data_path`` is given, then train.
Each evaluation appends one row to metrics.jsonl and rewrites summary.json; checkpoints follow
``train.checkpoint_every``. Resuming restores every piece of state (weights, EMA, optimizer,
Grokfast, batch order, RNG, the running loss), so on CPU the resumed metrics equal an
uninterrupted run's (wall time aside).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from groklab.data import DataConfig, Dataset, load_dataset, make_dataset
from groklab.errors import GroklabError
from groklab.fsutil import atomic_write_json, atomic_write_text
from groklab.models import build_model, describe
from groklab.train import checkpoints as ck
from groklab.train import metrics as mx
from groklab.train.batching import BatchSampler
from groklab.train.config import RunConfig, prefix_errors, read_config, stop_targets
from groklab.train.ema import WeightEMA
from groklab.train.evaluate import evaluate_batchables, to_batchable
from groklab.train.grokfast import build_filter
from groklab.train.lock import RunLock
from groklab.train.optim import build_optimizer, lr_at

CONFIG_NAME = "config.yaml"
INIT_FROM_NAME = "init_from.json"  # where a fine-tuning run started (train_run(init_from=...))
DATA_DIR = "data"
# train fields that may change when a run is resumed (they do not change the trajectory)
RESUMABLE_FIELDS = {"steps", "device", "threads", "eval_batch_size", "early_stop_patience",
                    "early_stop_delta", "plots", "checkpoint_every", "compile", "stop_at",
                    "stop_unless_forecast", "forecast_model"}
COMPILE_BACKEND = "inductor"  # torch.compile backend of train.compile (tests use "aot_eager")
# train.compile on CUDA also replays the step's forward + backward as CUDA graphs (measured on an
# H200, batch 512, bf16: paper decoder 76 -> 134 steps/s, paper TRM 48 -> 158; docs/performance.md)
COMPILE_MODE = {"cuda": "reduce-overhead"}
SHORT_NAMES = {"id_atomic": "id", "ood_atomic": "ood", "train_inferred": "inf",
               "test_inferred_iid": "iid", "test_inferred_ood": "ood2"}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; a cuda request without CUDA is a GroklabError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GroklabError(f"train.device={name!r} is invalid (allowed: auto | cpu here: "
                               "torch sees no CUDA device)")
        idx = int(name[5:]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise GroklabError(f"train.device={name!r} is invalid (allowed: cuda:0..cuda:"
                               f"{torch.cuda.device_count() - 1})")
    return torch.device(name)


def train_run(cfg: RunConfig | None, run_dir, resume: bool = False, callbacks=(),
              quiet: bool = False, init_from: str | os.PathLike | None = None, stoppers=()) -> dict:
    """Train ``cfg`` in ``run_dir`` and return the summary (see :func:`metrics.summarize`).

    ``resume=True`` continues the run from its latest good checkpoint (``cfg`` None = the
    stored config; otherwise it must match it except for :data:`RESUMABLE_FIELDS`).
    ``callbacks``: ``fn(step, model, dataset, row) -> dict | None`` at each evaluation; the
    returned keys are merged into the metrics row (the model is the evaluated one, EMA if on).
    ``init_from="RUN[@STEP]"`` starts a new run (fine-tuning) from that run's weights at that
    checkpoint (default: its latest good one; its EMA weights when it kept an EMA) with a fresh
    optimizer; the model must have the same parameters and the dataset the same vocabulary. It
    is recorded in ``init_from.json``, so a resume before the first checkpoint starts from it too.
    ``stoppers``: ``fn(rows) -> reason | None`` after each evaluation (all metrics rows so far);
    a reason ends the run with ``stopped: reason`` (``train.stop_unless_forecast`` adds one).
    """
    run_dir = Path(run_dir)
    cfg = copy.deepcopy(cfg)  # the caller's object is left as it was
    if init_from is not None and resume:
        raise GroklabError("init_from is only for a new run (a resumed run continues from its "
                           f"own checkpoints; its start is recorded in {INIT_FROM_NAME})")
    if resume:
        cfg = _resume_config(cfg, run_dir)
    else:
        if cfg is None:
            raise GroklabError("a config is needed to start a run")
        cfg.validate()
        _check_fresh(run_dir)
    device = resolve_device(cfg.train.device)
    external = load_dataset(cfg.data_path, verify=True) if cfg.data_path else None
    if external is not None and not resume:
        cfg.data_path = str(Path(cfg.data_path).resolve())
        cfg.data = _manifest_data_config(external) or cfg.data

    created = not run_dir.exists()
    with RunLock(run_dir) as lock:
        if lock.took_over and not quiet:
            _log(f"took over the stale lock of pid {lock.took_over.get('pid')} (no longer running)")
        if resume:
            summary = mx.read_summary(run_dir / mx.SUMMARY_NAME)
            if _finished(summary, cfg):
                msg = (f"run {run_dir} already finished at step {summary['steps']} "
                       f"({summary['stopped']}); nothing to do")
                print(msg, file=sys.stderr)
                return summary
        try:
            atomic_write_text(run_dir / CONFIG_NAME, cfg.to_yaml())
            dataset = external or prefix_errors("data.", lambda: _run_dataset(cfg, run_dir, quiet))
            trainer = Trainer(cfg, dataset, device, run_dir, callbacks, quiet, stoppers)
            start = _read_init_from(run_dir) if resume else init_from
            if start is not None:
                source = _load_initial_weights(trainer, start)
                if not resume:
                    atomic_write_json(run_dir / INIT_FROM_NAME, source)
        except GroklabError:
            # Known only once the data exists (a phi above what the generated graph allows, a
            # stop_at split the dataset lacks): a run directory this call created is removed
            # again, so a bad config leaves nothing behind.
            if created and not resume:
                lock.release()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        with trainer.threads():
            return trainer.run(resume)


def _read_init_from(run_dir: Path) -> str | None:
    path = run_dir / INIT_FROM_NAME
    if not path.is_file():
        return None
    info = json.loads(path.read_text(encoding="utf-8"))
    step = info.get("step")
    return info["init_from"] + (f"@{step}" if step is not None else "")


def _load_initial_weights(trainer: "Trainer", spec) -> dict:
    """Load ``RUN[@STEP]``'s weights into the trainer's model (and EMA); return the record."""
    from groklab.train.runs import checkpoint_weights, load_run, parse_run_spec

    path, step = parse_run_spec(spec)
    run = load_run(path)
    if step is None and not run.checkpoint_steps:
        raise GroklabError(f"init_from={str(spec)!r} is invalid (allowed: a run with a "
                           "usable checkpoint; this one has none)")
    step, state = checkpoint_weights(run, step, ema=True)
    if run.dataset.vocab != trainer.dataset.vocab:
        raise GroklabError(f"init_from={str(spec)!r} is invalid (allowed: a run whose dataset "
                           f"has this run's vocabulary of {trainer.dataset.vocab_size} tokens)")
    mine = trainer.model.state_dict()
    differ = sorted(k for k in set(state) | set(mine)
                    if k not in state or k not in mine or state[k].shape != mine[k].shape)
    if differ:
        raise GroklabError(f"init_from={str(spec)!r} is invalid (allowed: a run whose model has "
                           f"this run's parameters; differs in {', '.join(differ[:3])}"
                           f"{', ...' if len(differ) > 3 else ''})")
    trainer.model.load_state_dict(state)
    if trainer.ema is not None:
        trainer.ema.model.load_state_dict(state)
    return {"init_from": str(run.path.resolve()), "step": step}


def _check_fresh(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise GroklabError(f"out={str(run_dir)!r} is invalid (allowed: a directory; this is a file)")
    if run_dir.is_dir() and any(p.name != ".lock" for p in run_dir.iterdir()):
        raise GroklabError(f"out={str(run_dir)!r} already exists and is not empty "
                           "(use --resume to continue that run, or choose another --out)")


def _resume_config(cfg: RunConfig | None, run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise GroklabError(f"out={str(run_dir)!r} has no {CONFIG_NAME}: nothing to resume "
                           "(start a new run without --resume)")
    stored = read_config(path)
    if cfg is None:
        return stored
    cfg.validate()
    new, old = cfg.to_dict(), stored.to_dict()
    if old["data_path"] or new["data_path"]:  # an external dataset: its path identifies it
        same = bool(old["data_path"] and new["data_path"]) and \
            Path(new["data_path"]).resolve() == Path(old["data_path"]).resolve()
        if not same:
            raise GroklabError(f"data_path={new['data_path']!r} is invalid when resuming "
                               f"(allowed: the run's {old['data_path']!r})")
    sections = ("model", "optim", "train") if old["data_path"] else ("data", "model", "optim", "train")
    for section in sections:
        for key, value in new[section].items():
            if section == "train" and key in RESUMABLE_FIELDS:
                continue
            if value != old[section].get(key):
                raise GroklabError(
                    f"{section}.{key}={value!r} is invalid when resuming (allowed: the run's "
                    f"{old[section].get(key)!r}; only train.{{{', '.join(sorted(RESUMABLE_FIELDS))}}} "
                    "may change)")
    cfg.data_path, cfg.data, cfg.preset = stored.data_path, stored.data, stored.preset
    return cfg


def _finished(summary: dict | None, cfg: RunConfig) -> bool:
    if not summary or not summary.get("finished"):
        return False
    if summary.get("stopped") == "early_stop" and cfg.train.early_stop_patience > 0:
        return True
    if summary.get("stopped") == "nonfinite":
        return True
    if summary.get("stopped") == "target" and cfg.train.stop_at:
        return True
    if summary.get("stopped") == "forecast" and cfg.train.stop_unless_forecast:
        return True
    return summary.get("steps", 0) >= cfg.train.steps


def _manifest_data_config(dataset: Dataset) -> DataConfig | None:
    try:
        return DataConfig.from_dict(dataset.config)
    except (GroklabError, TypeError):
        return None


def _run_dataset(cfg: RunConfig, run_dir: Path, quiet: bool) -> Dataset:
    path = run_dir / DATA_DIR
    if (path / "manifest.json").is_file():
        return load_dataset(path, verify=True)
    if not quiet:
        _log(f"generating the dataset into {path}")
    return make_dataset(cfg.data, path, force=True)


def _log(msg: str) -> None:
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
        self.opt = build_optimizer(self.model, o.betas, o.eps, o.weight_decay)
        self.filter = build_filter(o.grokfast, o.grokfast_alpha, o.grokfast_lamb, o.grokfast_window)
        layout = self.model.layout
        self.train_data = to_batchable(dataset.split("train"), layout, device, labels=True)
        self.probes = {n: to_batchable(dataset.split(n), layout, device) for n in dataset.probe_names}
        self.sampler = BatchSampler(len(self.train_data), t.batch_size, t.seed, device)
        self.stop_at = stop_targets(t.stop_at)
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
        metrics_path = self.run_dir / mx.METRICS_NAME
        start_step = 0
        if resume:
            ck.remove_temp_files(self.run_dir)
            found = ck.load_latest_good(self.run_dir, device=self.device)
            if found is not None:
                start_step, tensors, meta = found
                self.restore(start_step, tensors, meta)
                if not self.quiet:
                    _log(f"resuming {self.run_dir} from step {start_step}")
            elif not self.quiet:
                _log(f"no usable checkpoint in {self.run_dir}: starting from step 0")
            self.rows = [r for r in mx.read_metrics(metrics_path) if r["step"] <= start_step] if found else []
        mx.write_metrics(metrics_path, self.rows)
        if not self.quiet:
            _log(describe(self.model) + f" on {self.device}; {len(self.train_data):,} training items")
        writer = mx.MetricsWriter(metrics_path)
        bar = tqdm(total=t.steps, initial=self.step, disable=self.quiet, unit="step",
                   dynamic_ncols=True, mininterval=0.5, file=sys.stderr, leave=True)
        t0 = time.perf_counter()
        elapsed = lambda: self.elapsed_before + time.perf_counter() - t0  # noqa: E731
        stopped = None
        try:
            if not self.rows:  # the initial evaluation
                self._record(self.evaluate_row(elapsed()), writer, bar)
                if ck.checkpoint_due(0, t.checkpoint_every):
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
                    if stopped is not None or ck.checkpoint_due(self.step, t.checkpoint_every):
                        self.checkpoint(elapsed())
                    elif interrupted:
                        self.checkpoint(elapsed())
                if interrupted and stopped is None:
                    _log(f"interrupted at step {self.step}; checkpoint saved, continue with --resume")
                    raise KeyboardInterrupt
        finally:
            bar.close()
            writer.close()
        summary = mx.summarize(self.rows, stopped=stopped, finished=True)
        mx.write_summary(self.run_dir / mx.SUMMARY_NAME, summary)
        if t.plots:
            from groklab.train.plots import plot_run
            plot_run(self.run_dir, self.rows)
        if not self.quiet:
            _log(_final_line(summary))
        return summary

    def _record(self, row: dict, writer: mx.MetricsWriter, bar) -> None:
        self.rows.append(row)
        writer.append(row)
        mx.write_summary(self.run_dir / mx.SUMMARY_NAME, mx.summarize(self.rows))
        if not self.quiet:
            accs = " ".join(f"{SHORT_NAMES.get(k[4:], k[4:])}={v:.2f}" for k, v in row.items()
                            if k.startswith("acc/"))
            loss = f"loss={row['loss']:.3g} " if row["loss"] is not None else ""
            bar.set_postfix_str(loss + accs, refresh=False)

    def _stop_reason(self) -> str | None:
        t, last = self.cfg.train, self.rows[-1]
        if last["loss"] is not None and not math.isfinite(last["loss"]):
            warnings.warn(f"training loss is {last['loss']} at step {self.step}; stopping", RuntimeWarning)
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
    import signal
    import threading

    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, previous)


def _final_line(summary: dict) -> str:
    first = summary["first_step"]
    bits = [f"stopped at step {summary['steps']} ({summary['stopped']}) after {summary['wall_time']:.1f}s"]
    for key, step in first.items():
        if step is not None:
            bits.append(f"{key} at step {step}")
    return "; ".join(bits)
