"""Where tensors live: one ``device="auto"`` rule for every stage, and mixed precision on the GPU.

``"auto"`` means CUDA when ``torch.cuda.is_available()``, else the CPU; any
other value is passed to :class:`torch.device` (``"cpu"``, ``"cuda"``,
``"cuda:1"``). Every stage (training, checkpoint loading, Grad-CAM, mask
scoring, segmenters, evaluation, the CAM study, the book's artefacts) takes a
``device`` argument resolved here, and records :func:`device_name` of the
result in its output.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> device_name("cpu")
    'cpu'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["DEVICE_CHOICES", "DEVICE_ENV_VAR", "autocast", "device_name", "model_device", "resolve_device",
           "set_cpu_threads"]

DEVICE_CHOICES = ("auto", "cpu", "cuda")
"""Values the command-line ``--device`` option accepts."""

DEVICE_ENV_VAR = "CAMSEG_DEVICE"
"""Environment variable the book's artefacts read for their device (set by ``camseg build --device``)."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``device``.

    Args:
        device: ``"auto"`` or None (CUDA when available, else the CPU), or
            anything :class:`torch.device` accepts.

    Raises:
        ValueError: an unknown device string, or ``"cuda"`` on a machine
            without CUDA (the message says so instead of failing later).
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICE_CHOICES)} "
                         f"(or e.g. 'cuda:1')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available on this machine; "
                         "use --device auto or cpu")
    return dev


def device_name(device: str | torch.device | None) -> str:
    """The resolved device as recorded in results: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    return str(resolve_device(device))


def model_device(model: nn.Module) -> torch.device:
    """Device of a module's first parameter (the CPU for a module without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def set_cpu_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in this process for torch *and* OpenCV (which otherwise starts
    its own pool of one thread per core next to torch's).

    For worker processes that share the CPU: two evaluation workers of one thread each
    spent about a quarter of their CPU time in OpenCV's extra threads and ran 0.87x as long
    once it was turned off (same results: the threads only split the work).

    Raises:
        ValueError: ``threads`` is not an integer >= 1.
    """
    import cv2

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype used on ``device``: bfloat16 on CUDA GPUs that support it,
    else float16 on CUDA; None (full precision) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def autocast(device: str | torch.device, enabled: bool = True, dtype: torch.dtype | None = None) -> Iterator[None]:
    """Mixed precision on CUDA (``torch.autocast``), a no-op on the CPU or with ``enabled=False``.

    Args:
        device: where the computation runs.
        enabled: False: full precision everywhere.
        dtype: ``torch.float16`` or ``torch.bfloat16`` (default ``autocast_dtype``).
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    dtype = dtype or autocast_dtype(dev)
    if not enabled or dev.type != "cuda" or dtype is None:
        yield
        return
    with torch.autocast(device_type="cuda", dtype=dtype):
        yield
