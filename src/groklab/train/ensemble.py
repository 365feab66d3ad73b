"""``train.ensemble: S``: S runs of one shape trained together as one stacked model.

The S members differ only in ``train.seed`` (``seed, seed + 1, ...``): each has its own
initialisation, batch order, optimizer, Grokfast and weight-EMA state, and its own ordinary
run directory ``OUT/seed_N`` (config.yaml with ``train.ensemble: 1``, metrics.jsonl,
summary.json, checkpoints, plots), which every downstream tool reads -- and ``groklab train
--resume`` continues -- as a run trained alone. ``OUT`` holds the ensemble's config.yaml,
``ensemble.json`` (the member list) and the dataset the members share (``OUT/data``, their
``data_path``). ``groklab sweep --stack`` passes explicit seeds and member directories (its
trial directories) instead; ensemble.json records them, relative to ``OUT`` when inside it.

One training step draws each member's batch from its own sampler, runs the single run's own
forward + loss (``Trainer._forward_loss``) on a stand-in model whose forwards are the S
members' as one (``torch.func.functional_call`` over member-stacked parameters under
``torch.vmap``: batched matmuls) and whose losses are taken per member (the study format's
loss masks by data, which vmap cannot batch), backpropagates their sum, and updates the
stacked tensors with the optimizer, Grokfast
filter, ⊥Grad and weight EMA of a single run, whose element-wise updates are per member by
construction and whose reductions (gradient clipping, ⊥Grad, Muon) are taken per member.
Each member keeps a :class:`~groklab.train.loop.Trainer` for everything but the step: the
stacked state is copied into the members (:meth:`Stack.scatter`) before evaluations and
checkpoints, so rows, checkpoints and resume are exactly a single run's. A member that stops
(``train.stop_at``, early stop, a non-finite loss) leaves the stack, which is rebuilt from the
others (:meth:`Stack.gather`). The members' metrics equal separate runs' up to float rounding
of the batched kernels (tests/train/test_train_ensemble.py states the tolerance).
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from groklab.data import load_dataset, make_dataset
from groklab.errors import GroklabError
from groklab.fsutil import atomic_write_json, atomic_write_text
from groklab.train import checkpoints as ck
from groklab.train import metrics as mx
from groklab.train import rundir
from groklab.train.config import RunConfig
from groklab.train.grokfast import build_filter
from groklab.train.lock import RunLock
# run-directory rules shared with single runs (loop.train_run dispatches here lazily)
from groklab.train.runstart import check_fresh, manifest_data_config, resume_config
from groklab.train.preflight import fit_max_len, preflight
from groklab.train.rundir import CONFIG_NAME, ENSEMBLE_NAME, resolve_device
from groklab.train.trainer import Trainer
from groklab.train.optim import build_optimizer
from groklab.train.perp import perp_grad_
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s


def member_name(seed: int) -> str:
    return f"seed_{seed}"


def member_seeds(cfg: RunConfig) -> list[int]:
    return list(range(cfg.train.seed, cfg.train.seed + cfg.train.ensemble))


def check_supported(cfg: RunConfig) -> None:
    """What a stacked step cannot do exactly (yet): GroklabErrors naming the field."""
    if cfg.model.dropout > 0:
        raise GroklabError(f"model.dropout={cfg.model.dropout!r} is invalid with train.ensemble="
                           f"{cfg.train.ensemble} (allowed: 0; dropout under vmap would not "
                           "reproduce a separate run's masks)")
    if cfg.train.stop_unless_forecast:
        raise GroklabError(f"train.stop_unless_forecast={cfg.train.stop_unless_forecast!r} is invalid "
                           f"with train.ensemble={cfg.train.ensemble} (allowed: ''; forecast stops "
                           "are not implemented for ensembles yet)")
    if cfg.train.compile:
        raise GroklabError(f"train.compile=True is invalid with train.ensemble={cfg.train.ensemble} "
                           "(allowed: false; a compiled stacked step is not implemented yet)")


def train_ensemble(cfg: RunConfig | None, run_dir, resume: bool = False, callbacks=(),
                   quiet: bool = False, members: list[tuple[int, Path]] | None = None) -> dict:
    """Train (or resume) the ensemble ``cfg`` in ``run_dir``; returns ``{"ensemble": S,
    "members": {name: summary}, "steps": ..., "stopped": ...}``.

    ``members``: explicit ``(seed, run directory)`` pairs in place of seeds ``seed ..
    seed + S - 1`` in ``run_dir/seed_N`` (a sweep's stacked trials, which live in the sweep's
    own trial directories); fresh starts only, ``len(members) == train.ensemble``."""
    run_dir = Path(run_dir)
    cfg = copy.deepcopy(cfg)
    if members is not None:
        _check_members(cfg, members, resume)
    if resume:
        stored = run_dir / CONFIG_NAME
        if not (run_dir / ENSEMBLE_NAME).is_file() or not stored.is_file():
            raise GroklabError(f"out={str(run_dir)!r} has no {ENSEMBLE_NAME}: nothing to resume "
                               "(start a new ensemble without --resume)")
        old = rundir.read_config(run_dir)
        cfg = cfg or old
        cfg.validate()
        if cfg.train.ensemble != old.train.ensemble or cfg.train.seed != old.train.seed:
            raise GroklabError(f"train.ensemble={cfg.train.ensemble!r} is invalid when resuming "
                               f"(allowed: the ensemble's {old.train.ensemble} members from seed "
                               f"{old.train.seed})")
    else:
        if cfg is None:
            raise GroklabError("a config is needed to start a run")
        cfg.validate()
        check_fresh(run_dir)
    check_supported(cfg)
    device = resolve_device(cfg.train.device)
    if not resume:  # as a single run: nothing is written before this passes (per member)
        external = load_dataset(cfg.data_path, verify=True) if cfg.data_path else None
        fit_max_len(cfg, external)
        preflight(cfg, device, external)
    created = not run_dir.exists()
    if members is None:
        members = (_recorded_members(run_dir) if resume else None) or \
            [(seed, run_dir / member_name(seed)) for seed in member_seeds(cfg)]
    seeds = [seed for seed, _ in members]
    with contextlib.ExitStack() as locks:
        locks.enter_context(RunLock(run_dir))
        try:
            dataset, data_path = _shared_dataset(cfg, run_dir, quiet)
            plans = []  # every member's config checked before anything is written
            for seed, mdir in members:
                mcfg, mdir = member_config(cfg, seed, data_path, dataset), Path(mdir)
                if resume and (mdir / CONFIG_NAME).is_file():
                    mcfg = resume_config(mcfg, mdir)
                plans.append((mcfg, mdir))
            atomic_write_text(run_dir / CONFIG_NAME, cfg.to_yaml())
            atomic_write_json(run_dir / ENSEMBLE_NAME, {
                "size": len(seeds), "seeds": seeds,
                "members": [_member_entry(run_dir, Path(d)) for _, d in members],
                "data_path": str(data_path)})
            stacked = []
            for mcfg, mdir in plans:
                locks.enter_context(RunLock(mdir))
                atomic_write_text(mdir / CONFIG_NAME, mcfg.to_yaml())
                stacked.append(Member(mcfg, dataset, device, mdir, callbacks))
        except GroklabError:
            # as a single run: a bad config found only now (a stop_at split the data lacks)
            # leaves nothing behind in a directory this call created
            if created and not resume:
                locks.close()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        with stacked[0].trainer.threads():
            return _run(stacked, resume and any(m.has_rows() for m in stacked), quiet)


def _check_members(cfg: RunConfig | None, members: list[tuple[int, Path]], resume: bool) -> None:
    if resume or cfg is None:
        raise GroklabError("members= is invalid when resuming (allowed: a fresh start; each "
                           "member resumes as an ordinary run)")
    seeds = [seed for seed, _ in members]
    dirs = [Path(d).resolve() for _, d in members]
    if len(members) != cfg.train.ensemble or len(set(seeds)) != len(seeds) \
            or len(set(dirs)) != len(dirs):
        raise GroklabError(f"members={len(members)} runs is invalid (allowed: train.ensemble="
                           f"{cfg.train.ensemble} distinct seeds in distinct directories)")


def _recorded_members(run_dir: Path) -> list[tuple[int, Path]] | None:
    """The (seed, directory) pairs ensemble.json records (relative entries: inside run_dir)."""
    info = read_ensemble(run_dir) or {}
    if len(info.get("members", ())) != len(info.get("seeds", ())):
        return None
    return [(seed, run_dir / entry) for seed, entry in zip(info["seeds"], info["members"])]


def _member_entry(run_dir: Path, mdir: Path) -> str:
    """A member's directory as ensemble.json records it: relative to the ensemble when inside."""
    try:
        return str(mdir.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(mdir.resolve())


def member_config(cfg: RunConfig, seed: int, data_path: Path, dataset) -> RunConfig:
    """The ordinary single-run config of the member with ``seed``."""
    mcfg = copy.deepcopy(cfg)
    mcfg.train.seed, mcfg.train.ensemble = seed, 1
    mcfg.data_path = str(Path(data_path).resolve())
    mcfg.data = manifest_data_config(dataset) or mcfg.data
    return mcfg.validate()


def _shared_dataset(cfg: RunConfig, run_dir: Path, quiet: bool):
    if cfg.data_path:
        return load_dataset(cfg.data_path, verify=True), Path(cfg.data_path).resolve()
    path = run_dir / "data"
    if (path / "manifest.json").is_file():
        return load_dataset(path, verify=True), path.resolve()
    if not quiet:
        tqdm.write(f"groklab train: generating the dataset into {path}", file=sys.stderr)
    return make_dataset(cfg.data, path, force=True, field_path="data."), path.resolve()


class Member:
    """One member's single-run Trainer and where its run stands."""

    def __init__(self, cfg: RunConfig, dataset, device, run_dir: Path, callbacks):
        self.trainer = Trainer(cfg, dataset, device, run_dir, callbacks, quiet=True)
        self.rng_state = torch.get_rng_state()  # a lone run's global RNG after its init
        self.stopped: str | None = None
        self.writer: mx.MetricsWriter | None = None

    def has_rows(self) -> bool:
        return rundir.metrics_path(self.trainer.run_dir).is_file()

    def checkpoint(self, elapsed: float) -> None:
        keep = torch.get_rng_state()
        torch.set_rng_state(self.rng_state)
        try:
            self.trainer.checkpoint(elapsed)
        finally:
            torch.set_rng_state(keep)


def _run(members: list[Member], resume: bool, quiet: bool) -> dict:
    t = members[0].trainer.cfg.train
    done: dict[str, dict] = {}
    active = []
    for m in members:
        tr = m.trainer
        summary = rundir.read_summary(tr.run_dir) if resume else None
        if rundir.is_finished(summary, tr.cfg):
            done[tr.run_dir.name] = summary
            continue
        active.append(m)
    start = _restore(active) if resume else None
    for m in active:
        tr = m.trainer
        path = rundir.metrics_path(tr.run_dir)
        tr.rows = [r for r in mx.read_metrics(path) if r["step"] <= start] if start is not None else []
        mx.write_metrics(path, tr.rows)
        m.writer = mx.MetricsWriter(path)
    bar = tqdm(total=t.steps, initial=start or 0, disable=quiet, unit="step", dynamic_ncols=True,
               mininterval=0.5, file=sys.stderr, leave=True, desc=f"ensemble of {len(members)}")
    t0 = time.perf_counter()
    base = {id(m): m.trainer.elapsed_before for m in active}
    elapsed = lambda m: base[id(m)] + time.perf_counter() - t0  # noqa: E731
    stack = Stack(active) if active else None
    try:
        for m in active:
            if not m.trainer.rows:
                m.trainer._record(m.trainer.evaluate_row(elapsed(m)), m.writer, None)
                if ck.checkpoint_due(0, m.trainer.checkpoint_every):
                    m.checkpoint(elapsed(m))
            m.stopped = m.trainer._stop_reason()
        while active:
            active = _retire(active, done)
            if not active:
                break
            if stack.members != active:
                stack = Stack(active)
            stack.train_step()
            bar.update(1)
            step = stack.step
            evaluate = step % t.eval_every == 0 or step >= t.steps
            save = ck.checkpoint_due(step, members[0].trainer.checkpoint_every)
            if evaluate or save:
                stack.scatter()
            for m in active:
                if evaluate:
                    m.trainer._record(m.trainer.evaluate_row(elapsed(m)), m.writer, None)
                    m.stopped = m.trainer._stop_reason()
                if m.stopped is not None or save:
                    m.checkpoint(elapsed(m))
            if evaluate:
                stack.loss_sum.zero_()
                stack.loss_count = 0
                bar.set_postfix_str(" ".join(
                    f"{m.trainer.rows[-1].get('acc/test_inferred_iid', 0):.2f}" for m in active), refresh=False)
    finally:
        bar.close()
        for m in members:
            if m.writer is not None:
                m.writer.close()
    names = [m.trainer.run_dir.name for m in members]
    out = {"ensemble": len(members), "members": {n: done[n] for n in names}}
    out["steps"] = max(s["steps"] for s in out["members"].values())
    out["stopped"] = ", ".join(f"{n}: {s['stopped']}" for n, s in out["members"].items())
    out["first_step"] = {}
    return out


def _retire(active: list[Member], done: dict) -> list[Member]:
    """Finish the members that stopped (summary, plots); return the others."""
    keep = []
    for m in active:
        if m.stopped is None:
            keep.append(m)
            continue
        tr = m.trainer
        summary = mx.summarize(tr.rows, stopped=m.stopped, finished=True, device=str(tr.device))
        rundir.write_summary(tr.run_dir, summary)
        if tr.cfg.train.plots:
            from groklab.train.plots import plot_run
            plot_run(tr.run_dir, tr.rows)
        done[tr.run_dir.name] = summary
    return keep


def _restore(active: list[Member]) -> int | None:
    """Load every active member at the newest step all of them have a good checkpoint of
    (None: some member has none, and all start over)."""
    found = {}
    for m in active:
        tr = m.trainer
        ck.remove_temp_files(tr.run_dir)
        # as a single run: only a checkpoint whose evaluations metrics.jsonl holds
        until = mx.resumable_step(mx.read_metrics(rundir.metrics_path(tr.run_dir)), tr.cfg.train.eval_every)
        found[id(m)] = ck.load_latest_good(tr.run_dir, device=tr.device, max_step=until)
    if not active or any(f is None for f in found.values()):
        return None
    step = min(f[0] for f in found.values())
    for m in active:
        s, tensors, meta = found[id(m)]
        if s != step:
            latest = ck.load_latest_good(m.trainer.run_dir, device=m.trainer.device, max_step=step)
            if latest is None or latest[0] != step:
                raise GroklabError(f"{m.trainer.run_dir} has no checkpoint at step {step}, where the "
                                   "other members resume; resume it alone (its own --resume)")
            _, tensors, meta = latest
        m.trainer.restore(step, tensors, meta)
        m.rng_state = tensors["rng.cpu"].cpu()
    return step


class _Call(nn.Module):
    """``functional_call`` target: one method of the template model (``forward`` or
    ``answer_forward``) as a module's forward."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args):
        return getattr(self.model, self.method)(*args)


class _StackedModel:
    """What ``Trainer._forward_loss`` needs of ``self.model``, for member-stacked parameters:
    the forwards run vmapped over the members (batched matmuls), the losses per member (a
    loss may index by data-dependent masks, which vmap cannot batch); losses come back (S,)."""

    def __init__(self, template: nn.Module, params: dict, buffers: dict):
        self.template, self.params, self.buffers = template, params, buffers
        self._calls = {m: _Call(template, m) for m in ("forward", "answer_forward")}

    def _vmapped(self, method: str, *args):
        call = self._calls[method]

        def one(params, buffers, *inputs):
            params = {f"model.{n}": p for n, p in params.items()}
            return torch.func.functional_call(call, (params, buffers), inputs)

        return torch.vmap(one)(self.params, self.buffers, *args)

    def __call__(self, input_ids):
        return self._vmapped("forward", input_ids)

    def answer_forward(self, input_ids, answer_pos):
        return self._vmapped("answer_forward", input_ids, answer_pos)

    def loss(self, logits, target):
        return torch.stack([self.template.loss(lg, t) for lg, t in zip(logits, target)])

    def sequence_loss(self, logits, labels):
        return torch.stack([self.template.sequence_loss(lg, lb) for lg, lb in zip(logits, labels)])


class Stack:
    """The active members' state as member-stacked tensors, and the stacked training step."""

    def __init__(self, members: list[Member]):
        self.members = list(members)
        trainers = [m.trainer for m in members]
        first = trainers[0]
        self.cfg = first.cfg
        o = self.cfg.optim
        template = copy.deepcopy(first.model)
        names = [n for n, p in first.model.named_parameters() if p.requires_grad]
        self.names = names
        self.params = {n: torch.stack([dict(t.model.named_parameters())[n].detach() for t in trainers])
                       .requires_grad_() for n in names}
        # buffers may differ per member too (the recursive model's random z/y initial states)
        self.buffers = {f"model.{n}": torch.stack([dict(t.model.named_buffers())[n] for t in trainers])
                        for n, _ in template.named_buffers()}
        # Trainer._forward_loss reads only self.model and self.autocast: run it on the stack
        self.model, self.autocast = _StackedModel(template, self.params, self.buffers), first.autocast
        self.plist = [self.params[n] for n in names]
        by_id = {id(p): self.params[n] for n, p in first.model.named_parameters() if p.requires_grad}
        self.opt = build_optimizer(first.model, o.betas, o.eps, o.weight_decay, o.optimizer,
                                   o.muon_momentum, o.muon_adjust_lr, lookup=lambda p: by_id[id(p)])
        self.filter = build_filter(o.grokfast, o.grokfast_alpha, o.grokfast_lamb, o.grokfast_window)
        self.ema = None
        if first.ema is not None:
            self.ema = [torch.stack([dict(t.ema.model.named_parameters())[n].detach() for t in trainers])
                        for n in names]
        self.step = first.step
        self.loss_sum = torch.stack([t.loss_sum for t in trainers]).clone()
        self.loss_count = first.loss_count
        self.gather()

    # ------------------------------------------------------------------ state in and out
    def gather(self) -> None:
        """Stack the members' optimizer and Grokfast state (weights are stacked in __init__)."""
        trainers = [m.trainer for m in self.members]
        self.opt.load_state(_stack_states([t.opt.state_tensors() for t in trainers]), trainers[0].opt.steps)
        if self.filter is not None:
            states = [t.filter.state_tensors() for t in trainers]
            if states[0]:
                self.filter.load_state(_stack_states(states))

    def scatter(self) -> None:
        """Copy the stacked state into each member's Trainer (for evaluation and checkpoints)."""
        opt_state = self.opt.state_tensors()
        filt_state = self.filter.state_tensors() if self.filter is not None else {}
        with torch.no_grad():
            for i, m in enumerate(self.members):
                tr = m.trainer
                live = dict(tr.model.named_parameters())
                for n in self.names:
                    live[n].copy_(self.params[n][i])
                if self.ema is not None:
                    shadow = dict(tr.ema.model.named_parameters())
                    for n, s in zip(self.names, self.ema):
                        shadow[n].copy_(s[i])
                tr.opt.load_state(_member_state(opt_state, i), self.opt.steps)
                if tr.filter is not None and filt_state:
                    tr.filter.load_state(_member_state(filt_state, i))
                tr.loss_sum = self.loss_sum[i].clone()
                tr.loss_count = self.loss_count
                tr.step = self.step

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        o = self.cfg.optim
        first = self.members[0].trainer
        self.step += 1
        data = first.train_data
        idx = torch.stack([m.trainer.sampler.next() for m in self.members])
        batch = (data.input_ids[idx], data.answer_pos[idx], data.target[idx])
        if data.labels is not None:  # the study format: every labelled position in the loss
            batch += (data.labels[idx],)
        losses = Trainer._forward_loss(self, *batch)
        losses.sum().backward()
        if self.filter is not None:
            self.filter.apply(self.plist)
        if o.perp_grad:
            perp_grad_(self.plist, member_dims=1)
        if o.grad_clip > 0:
            clip_per_member_(self.plist, o.grad_clip)
        self.opt.step(first.lr(self.step))
        self.opt.zero_grad()
        if self.ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self.ema, [p.detach() for p in self.plist], 1.0 - o.ema_decay)
        self.loss_sum += losses.detach()
        self.loss_count += 1


@torch.no_grad()
def clip_per_member_(params: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` for each member of member-stacked parameters (dimension 0)."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # (P, S)
    total = torch.linalg.vector_norm(norms, dim=0)
    coef = (max_norm / (total + CLIP_EPS)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.ndim - 1))))


def _stack_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack per-member state dicts key by key; 0-d counters (equal across members) stay 0-d."""
    out = {}
    for k, v in states[0].items():
        if v.ndim == 0:
            out[k] = v.clone()
        else:
            out[k] = torch.stack([s[k] for s in states])
    return out


def _member_state(state: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    return {k: (v.clone() if v.ndim == 0 else v[i].clone()) for k, v in state.items()}


def read_ensemble(run_dir) -> dict | None:
    """The member list of an ensemble directory, or None if ``run_dir`` is not one."""
    path = Path(run_dir) / ENSEMBLE_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
