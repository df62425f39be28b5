"""Put a model in eval mode for a while, and give every module its own mode back.

``model.train(was_training)`` after ``model.eval()`` loses per-module state:
a model whose batch-norm layers were deliberately frozen in eval mode while
the rest trains comes back with every module training. :func:`eval_mode`
records each module's own ``training`` flag and restores exactly those, also
when the body raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the ``with`` block; each module's own flag restored on exit.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)); net[1].eval()  # doctest: +ELLIPSIS
    BatchNorm1d(...)
    >>> with eval_mode(net):
    ...     [m.training for m in net.modules()]
    [False, False, False]
    >>> [m.training for m in net.modules()]
    [True, True, False]
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"eval_mode needs a torch.nn.Module, got {type(model).__name__}")
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag
