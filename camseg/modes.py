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

from camseg.cam import eval_mode, in_train_mode  # implemented there: SPEC section 3 keeps cam.py's imports minimal

__all__ = ["eval_mode", "in_train_mode"]
