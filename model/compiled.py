"""torch.compile with a fallback: a model that cannot be compiled still runs, eagerly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)


class CompiledOrEager:
    """Calls `torch.compile(fn)`; if compiling is disabled, unavailable or fails, calls `fn`."""

    def __init__(self, fn: Callable[..., Any], enabled: bool):
        self._eager = fn
        self._compiled: Callable[..., Any] | None = None
        if enabled:
            try:
                self._compiled = torch.compile(fn, dynamic=False)
            except (RuntimeError, ImportError) as err:
                log.warning("torch.compile is unavailable (%s); running eagerly", err)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def __call__(self, *args: Any) -> Any:
        if self._compiled is not None:
            try:
                return self._compiled(*args)
            except (RuntimeError, torch._dynamo.exc.TorchDynamoException) as err:
                log.warning("torch.compile failed (%s); running eagerly from now on", err)
                self._compiled = None
        return self._eager(*args)
