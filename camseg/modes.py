"""Train/eval mode of a model, changed for a block and restored module by module.

``model.train(was_training)`` after ``model.eval()`` is not a restore: it sets
*every* submodule to the top module's flag, so a model whose batch-norm layers
were deliberately kept in eval mode (frozen layers during fine-tuning) comes
back with them in train mode. :func:`eval_mode` records each module's own
``training`` flag and puts back exactly those.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    >>> _ = model[1].eval()  # a frozen batch norm
    >>> with eval_mode(model):
    ...     [m.training for m in model.modules()]
    [False, False, False]
    >>> [m.training for m in model.modules()]
    [True, True, False]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["eval_mode", "in_train_mode"]


def in_train_mode(model: nn.Module) -> list[str]:
    """Names of the submodules of ``model`` (``""`` for the model itself) in train mode
    whose mode changes what they compute (batch norm, dropout and their kin:
    every module with running statistics or a dropout probability)."""
    names = []
    for name, module in model.named_modules():
        if module.training and (isinstance(module, nn.modules.batchnorm._NormBase)
                                or isinstance(module, nn.modules.dropout._DropoutNd)):
            names.append(name)
    return names


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` and all its submodules in eval mode for the block, then restore
    each module's own ``training`` flag (also when the block raises).

    Yields:
        ``model`` itself.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training
