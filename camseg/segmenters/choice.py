"""Which backend ``"auto"`` means here, and why, decided without loading anything.

``"auto"`` is SAM ``vit_b`` when its checkpoint is on this machine (argument,
``$CAMSEG_SAM_CHECKPOINT`` or the cache) **or can be downloaded** (a HEAD
request to the download URL, bounded by ``timeout`` seconds in all, DNS
included, so an offline machine falls back within seconds); otherwise the
default offline backend. The reason is kept, so that the book and the
command line can say which backend runs and why.

Example:
    >>> choice = choose_backend("floodfill")
    >>> choice.name, choice.reason
    ('floodfill', 'asked for floodfill')
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass

from camseg.segmenters.base import PromptableSegmenter
from camseg.segmenters.checkpoints import SAM_CHECKPOINTS, find_checkpoint
from camseg.segmenters.registry import SEGMENTERS

__all__ = ["DEFAULT_OFFLINE", "REACH_TIMEOUT", "SEGMENTER_ENV_VAR", "BackendChoice", "choose_backend", "get_segmenter",
           "reachable"]

DEFAULT_OFFLINE = "regiongrow"
"""The offline backend behind ``"offline"`` and the ``"auto"`` fallback, chosen for
robustness on degraded images (see ``benchmarks/offline_backends.py``)."""

SEGMENTER_ENV_VAR = "CAMSEG_SEGMENTER"
"""Environment variable the book's artefacts read for their segmenter (set by ``camseg build --segmenter``)."""

REACH_TIMEOUT = 3.0
"""Seconds the reachability check of ``"auto"`` may take in all."""


@dataclass(frozen=True)
class BackendChoice:
    """A resolved segmenter name and the reason for it.

    Attributes:
        name: a key of :data:`camseg.segmenters.SEGMENTERS <camseg.segmenters.registry.SEGMENTERS>` (never ``"auto"``).
        reason: one sentence for the reader, e.g. "SAM vit_b weights found at ...".
        requested: what was asked for (``"auto"``, ``"sam"``, ...).
        download: True when SAM's checkpoint is not local and will be downloaded.
    """

    name: str
    reason: str
    requested: str
    download: bool = False

    @property
    def is_fallback(self) -> bool:
        """True when ``"auto"`` fell back to the offline backend."""
        return self.requested == "auto" and not self.name.startswith("sam")


def reachable(url: str, timeout: float = REACH_TIMEOUT) -> tuple[bool, str]:
    """Whether a HEAD request to ``url`` succeeds within ``timeout`` seconds in all (name
    lookup included: the request runs in a daemon thread that is abandoned when late).

    Returns:
        ``(ok, detail)``: detail is the HTTP status, the error, or "no answer within N s".
    """
    import requests

    answer: dict[str, tuple[bool, str]] = {}

    def probe() -> None:
        try:
            r = requests.head(url, timeout=timeout, allow_redirects=True)
            answer["r"] = (r.ok, f"HTTP {r.status_code}")
        except requests.RequestException as exc:
            answer["r"] = (False, type(exc).__name__)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return answer.get("r", (False, f"no answer within {timeout:g} s"))


def choose_backend(name: str | None = "auto", checkpoint: str | os.PathLike | None = None, *,
                   model: object | None = None, base_url: str | None = None,
                   timeout: float = REACH_TIMEOUT) -> BackendChoice:
    """Resolve a segmenter name; ``"auto"`` as described in the module docstring.

    Args:
        name: a backend name, ``"auto"``, or None (``$CAMSEG_SEGMENTER``, else ``"auto"``).
        checkpoint: an explicit SAM checkpoint path (for ``"auto"``).
        model: a built SAM (``"auto"`` then means SAM).
        base_url: SAM's download location (default ``$CAMSEG_SAM_BASE_URL`` or the official one).
        timeout: bound on the reachability check, seconds.

    Raises:
        ValueError: an unknown name (the message lists the names).
    """
    name = name or os.environ.get(SEGMENTER_ENV_VAR) or "auto"
    if name != "auto":
        if name not in SEGMENTERS:
            raise ValueError(f"unknown segmenter {name!r}; expected one of: auto, {', '.join(SEGMENTERS)}")
        return BackendChoice(DEFAULT_OFFLINE if name == "offline" else name, f"asked for {name}", name)
    spec = SAM_CHECKPOINTS["vit_b"]
    if model is not None:
        return BackendChoice("sam-vit_b", "a SAM model was given", name)
    found = find_checkpoint("vit_b", checkpoint)
    if found is not None:
        return BackendChoice("sam-vit_b", f"SAM vit_b weights found at {found}", name)
    url = spec.url(base_url)
    ok, detail = reachable(url, timeout)
    if ok:
        return BackendChoice("sam-vit_b", f"SAM vit_b weights are not cached but can be downloaded from {url} "
                                          f"({spec.size / 2**20:.0f} MiB, once)", name, download=True)
    return BackendChoice(DEFAULT_OFFLINE, f"SAM weights ({spec.filename}) were not found on this machine and "
                                          f"{url} cannot be reached ({detail}); using the offline backend "
                                          f"{DEFAULT_OFFLINE!r} (set $CAMSEG_SAM_CHECKPOINT or use "
                                          "segmenter 'sam' to insist on SAM)", name)


def get_segmenter(name: str = "auto", **kwargs) -> PromptableSegmenter:
    """Make a segmenter by name.

    Args:
        name: a key of :data:`~camseg.segmenters.registry.SEGMENTERS`, or ``"auto"``: SAM ``vit_b`` when a
            checkpoint is available locally (``checkpoint=`` in ``kwargs``,
            ``$CAMSEG_SAM_CHECKPOINT`` or the cache folder) or can be
            downloaded (bounded check, :func:`choose_backend`), or ``model=``
            is given; else the default offline backend
            (:data:`DEFAULT_OFFLINE`) with a :class:`UserWarning` saying why.
        **kwargs: passed to the backend's constructor. With ``"auto"`` they
            are SAM options and are not used by the offline fallback.

    Returns:
        The segmenter; its ``name`` is recorded in every result.

    Raises:
        ValueError: unknown name (the message lists the names).
    """
    if name == "auto":
        choice = choose_backend("auto", kwargs.get("checkpoint"), model=kwargs.get("model"),
                                base_url=kwargs.get("base_url"))
        if not choice.is_fallback:
            return SEGMENTERS["sam-vit_b"](**kwargs)
        warnings.warn(choice.reason, UserWarning, stacklevel=2)
        return SEGMENTERS[DEFAULT_OFFLINE]()
    try:
        factory = SEGMENTERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown segmenter {name!r}; expected one of: auto, {', '.join(SEGMENTERS)}") from None
    return factory(**kwargs)
