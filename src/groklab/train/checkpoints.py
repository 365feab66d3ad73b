"""Checkpoints: ``checkpoints/step_XXXXXXXX.safetensors`` + a JSON sidecar; never pickle.

The safetensors file holds every tensor (model, EMA, optimizer moments, Grokfast state, RNG and
data-order state); the sidecar holds the step, the sha256 of the safetensors bytes and the
JSON-able rest. Both are written atomically, tensors first: a checkpoint exists once its sidecar
does. Loading hashes the bytes before parsing them; a corrupted or truncated checkpoint is
reported with a warning and the next older one is tried.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from groklab.errors import GroklabError
from groklab.fsutil import atomic_write_bytes, atomic_write_json
from groklab.train.rundir import CKPT_DIR

FORMAT = 1
_NAME = re.compile(r"^step_(\d{8,})\.json$")


class CheckpointWarning(UserWarning):
    """A checkpoint was unreadable or failed its checksum and was skipped."""


def ckpt_paths(run_dir: str | os.PathLike, step: int) -> tuple[Path, Path]:
    base = Path(run_dir) / CKPT_DIR / f"step_{step:08d}"
    return base.with_suffix(".safetensors"), base.with_suffix(".json")


def checkpoint_steps(run_dir: str | os.PathLike) -> list[int]:
    """Steps that have a sidecar (not yet verified), ascending."""
    d = Path(run_dir) / CKPT_DIR
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _NAME.match(p.name)))


def save_checkpoint(run_dir: str | os.PathLike, step: int, tensors: dict[str, torch.Tensor],
                    meta: dict) -> Path:
    """Write the tensors and the sidecar atomically; tensors that share storage (tied
    weights) are stored once and listed under ``aliases`` in the sidecar."""
    unique, aliases = _dedupe(tensors)
    data = st_save(unique)
    st_path, js_path = ckpt_paths(run_dir, step)
    atomic_write_bytes(st_path, data)
    sidecar = {"format": FORMAT, "step": step, "file": st_path.name,
               "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
               "aliases": aliases, **meta}
    atomic_write_json(js_path, sidecar)
    return st_path


def load_checkpoint(run_dir: str | os.PathLike, step: int,
                    device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Verified (tensors, sidecar) of one checkpoint; GroklabError if missing or corrupted."""
    st_path, js_path = ckpt_paths(run_dir, step)
    try:
        meta = json.loads(js_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise GroklabError(f"checkpoint {js_path} is unreadable: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("aliases", {}), dict):
        raise GroklabError(f"checkpoint {js_path} is unreadable: not a checkpoint sidecar (a JSON "
                           f"object; got a {type(meta).__name__})")
    try:
        data = st_path.read_bytes()
    except OSError as exc:
        raise GroklabError(f"checkpoint {st_path} is unreadable: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if meta.get("format") != FORMAT or meta.get("step") != step or digest != meta.get("sha256"):
        raise GroklabError(f"checkpoint {st_path} failed its checksum (sha256 {digest[:12]}..., "
                           f"expected {str(meta.get('sha256'))[:12]}...; truncated or corrupted)")
    tensors = st_load(data)
    for alias, canonical in meta.get("aliases", {}).items():
        tensors[alias] = tensors[canonical]
    if torch.device(device).type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def load_latest_good(run_dir: str | os.PathLike, device: torch.device | str = "cpu",
                     max_step: int | None = None):
    """(step, tensors, sidecar) of the newest checkpoint (at most ``max_step``) that verifies,
    or None if none does. Each bad one on the way is skipped with a :class:`CheckpointWarning`."""
    for step in reversed(checkpoint_steps(run_dir)):
        if max_step is not None and step > max_step:
            continue
        try:
            tensors, meta = load_checkpoint(run_dir, step, device)
        except GroklabError as exc:
            warnings.warn(f"{exc}; falling back to an earlier checkpoint", CheckpointWarning, stacklevel=2)
            continue
        return step, tensors, meta
    return None


def remove_temp_files(run_dir: str | os.PathLike) -> None:
    """Delete half-written temp files a killed writer left in checkpoints/."""
    d = Path(run_dir) / CKPT_DIR
    if d.is_dir():
        for p in d.iterdir():
            if p.name.startswith(".step_"):
                p.unlink(missing_ok=True)


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _dedupe(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    storages: set[int] = set()
    for name, t in tensors.items():
        t = t.detach()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if t.numel() > 0 and key in seen:
            aliases[name] = seen[key]  # tied weights: store once
            continue
        seen[key] = name
        t = t.to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in storages or t.untyped_storage().nbytes() != t.numel() * t.element_size():
            t = t.clone()  # a view sharing memory: safetensors wants sole owners
        storages.add(t.untyped_storage().data_ptr())
        unique[name] = t
    return unique, aliases


def checkpoint_due(step: int, schedule: list[tuple[int | None, int]]) -> bool:
    """Whether ``step`` is on the checkpoint schedule: a list of ``(until_step, every)`` pairs,
    e.g. ``[(1000, 100), (10000, 1000), (None, 10000)]`` = every 100 steps up to 1000, then
    every 1000 up to 10000, then every 10000 (``None``: no end)."""
    for until, every in schedule:
        if until is None or step <= until:
            return every > 0 and step % every == 0
    return False
