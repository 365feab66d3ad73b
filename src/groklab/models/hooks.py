"""TransformerLens-style hook points: read and patch any named activation.

A :class:`HookPoint` is an identity module placed on an activation. Each hook point is its own
module, so its dotted module path (e.g. ``blocks.0.hook_resid_post``) is its name. A hook is
``fn(tensor, hook) -> tensor | None``; returning a tensor replaces the activation (patching).
Hooks are plain Python calls inside ``forward``, so they also fire under ``torch.no_grad``.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from groklab.errors import GroklabError

HookFn = Callable[[torch.Tensor, "HookPoint"], "torch.Tensor | None"]


class HookPoint(nn.Module):
    """Identity on its input, except for the hook functions currently attached."""

    def __init__(self):
        super().__init__()
        self.name = ""
        self._fns: list[HookFn] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self._fns:
            out = fn(x, self)
            if out is not None:
                if out.shape != x.shape:
                    raise ValueError(f"hook on {self.name} returned shape {tuple(out.shape)}, "
                                     f"expected {tuple(x.shape)}")
                x = out
        return x

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class HookedModel(nn.Module):
    """Base class: indexes HookPoints by name, runs with caches or temporary hooks."""

    hook_points: dict[str, HookPoint]

    def setup_hooks(self) -> None:
        """Name every HookPoint after its module path; call at the end of ``__init__``."""
        points = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                points[name] = module
        self.hook_points = points

    def _select(self, name) -> list[HookPoint]:
        if callable(name):
            return [hp for n, hp in self.hook_points.items() if name(n)]
        if name not in self.hook_points:
            some = ", ".join(list(self.hook_points)[:6])
            raise GroklabError(f"hook={name!r} is invalid (allowed: a hook name of this model, "
                               f"e.g. {some}, ...)")
        return [self.hook_points[name]]

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[object, HookFn]] = ()) -> Iterator["HookedModel"]:
        """Attach ``(name or name filter, fn)`` hooks for the duration of the ``with`` block."""
        attached: list[tuple[HookPoint, HookFn]] = []
        try:
            for name, fn in fwd_hooks:
                for hp in self._select(name):
                    hp._fns.append(fn)
                    attached.append((hp, fn))
            yield self
        finally:
            for hp, fn in reversed(attached):
                hp._fns.remove(fn)

    def hooks_attached(self) -> bool:
        """True while any hook function is attached to one of the hook points."""
        return any(hp._fns for hp in self.hook_points.values())

    def reset_hooks(self) -> None:
        """Remove every attached hook (e.g. after an exception outside ``hooks()``)."""
        for hp in self.hook_points.values():
            hp._fns.clear()

    def run_with_hooks(self, input_ids: torch.Tensor,
                       fwd_hooks: Iterable[tuple[object, HookFn]] = ()) -> torch.Tensor:
        """Forward pass with temporary hooks; a hook returning a tensor patches that activation."""
        with self.hooks(fwd_hooks):
            return self(input_ids)

    def run_with_cache(self, input_ids: torch.Tensor, names=None, detach: bool = True
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward pass returning ``(logits, {hook name: activation})``.

        ``names``: None for every hook point, a name, a list of names, or a filter
        ``fn(name) -> bool``.
        Activations are detached unless ``detach=False``.
        """
        cache: dict[str, torch.Tensor] = {}

        def store(x, hook):
            cache[hook.name] = x.detach() if detach else x

        if names is None:
            selected: list = [lambda n: True]
        elif callable(names) or isinstance(names, str):
            selected = [names]
        else:
            selected = list(names)
        logits = self.run_with_hooks(input_ids, [(n, store) for n in selected])
        return logits, cache
