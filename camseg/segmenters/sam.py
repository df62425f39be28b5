"""The Segment Anything (SAM v1) backend, with image embeddings computed once.

``segment_anything`` is imported only when a :class:`SamSegmenter` is made,
so importing camseg never needs it.

Expensive once, cheap many times: SAM's image encoder (a ViT on a 1024 x 1024
input) is the cost, the prompt decoder is cheap. :class:`SamSegmenter` keys
each image's embedding by the image's content (:func:`~camseg.segmenters.base.image_key`:
shape + BLAKE2b of the bytes) in a bounded LRU cache, so the encoder runs once
per distinct image however many prompts, pipelines or ``set_image`` calls
follow, and :meth:`SamSegmenter.prepare` encodes a list of images in batches
beforehand. Memory per cached image: SAM's embedding is float32 (1, 256, 64, 64)
for all three model types, **4 MiB**, held on the CPU; the default 64 entries
take 256 MiB (``cache_size=`` sets the bound; the least recently used entry
is dropped first, and ``prepare`` warns when asked for more new images than
fit). An optional disk cache (``cache_dir=``) keeps embeddings across
processes (one 4 MiB ``.pt`` file per image, written atomically; a file cut
short is ignored with a warning and rewritten). The disk cache is not
bounded: delete its folder to reclaim the space.

Point prompts are **(x, y)** pixels of the original image, (N, 2); SAM's
predictor rescales them to its input frame (``ResizeLongestSide``) itself.
Which mask is returned (``multimask``): for a single point the prompt is
ambiguous (part, object, whole), so SAM is asked for its 3 masks and the one
with the highest predicted IoU is kept; for several points one mask is asked
for, as segment-anything recommends for unambiguous prompts.

Example:
    >>> seg = SamSegmenter("vit_b")  # doctest: +SKIP
    >>> seg.prepare(images, batch_size=8)  # doctest: +SKIP
    >>> seg.set_image(images[0])  # doctest: +SKIP
    >>> res = seg.predict(np.array([[32.0, 20.0]]), np.array([1]))  # doctest: +SKIP
    >>> res.mask.shape, res.backend  # doctest: +SKIP
    ((48, 64), 'sam-vit_b')
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from camseg.segmenters.base import BaseSegmenter, image_key, validate_image
from camseg.segmenters.checkpoints import (
    SAM_CHECKPOINTS,
    CheckpointError,
    load_state_dict,
    quarantine_if_cached,
    resolve_checkpoint,
)
from camseg.utils.devices import autocast, autocast_dtype, resolve_device
from camseg.utils.paths import atomic_path

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

__all__ = ["EMBEDDING_BYTES", "SAM_MODEL_TYPES", "EmbeddingCache", "ImageEmbedding", "SamSegmenter", "load_sam"]

SAM_MODEL_TYPES = tuple(SAM_CHECKPOINTS)
"""``("vit_b", "vit_l", "vit_h")``."""

EMBEDDING_BYTES = 256 * 64 * 64 * 4
"""Bytes of one cached SAM image embedding, float32 (1, 256, 64, 64), 4 MiB for every model type."""


def load_sam(model_type: str, checkpoint: str | os.PathLike, device: str | torch.device = "auto") -> Sam:
    """Build segment-anything's ``Sam`` for ``model_type`` and load ``checkpoint`` into it.

    The file is read with ``torch.load(..., weights_only=True)`` and loaded
    strictly. A file that cannot be loaded raises :class:`~camseg.segmenters.checkpoints.CheckpointError`;
    if it lies in the cache folder it is first moved aside
    (``<name>.corrupt``), so it is never taken again.

    Returns:
        The model in eval mode on ``device``.
    """
    from segment_anything import sam_model_registry

    if model_type not in SAM_MODEL_TYPES:
        raise ValueError(f"unknown SAM model type {model_type!r}; expected one of {', '.join(SAM_MODEL_TYPES)}")
    path = Path(checkpoint)
    try:
        state = load_state_dict(path)
        model = sam_model_registry[model_type](checkpoint=None)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} is not a SAM {model_type} checkpoint: {exc}") from exc
    except CheckpointError as exc:
        aside = quarantine_if_cached(path, model_type)
        if aside is not None:
            raise CheckpointError(f"{exc} (the cached file was moved to {aside}; it will be downloaded again)") from exc
        raise
    return model.to(resolve_device(device)).eval()


@dataclass(frozen=True)
class ImageEmbedding:
    """SAM's encoding of one image.

    Attributes:
        features: float32 (1, C, h, w) on the CPU; (1, 256, 64, 64) for the
            released models.
        original_size: (H, W) of the image.
        input_size: (H', W') of the image resized so its long side is the
            encoder's input size (before padding to a square).
    """

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class EmbeddingCache:
    """A bounded LRU cache of :class:`ImageEmbedding` by image key, optionally backed by files.

    Args:
        max_entries: most embeddings held in memory (>= 1; 4 MiB each for SAM).
        folder: if given, embeddings are also written there and read back
            when not in memory (``folder / namespace / <key>.pt``, written to a
            temporary file and renamed atomically).
        namespace: identifies the model, so that different models never share
            files.
    """

    def __init__(self, max_entries: int = 64, folder: str | os.PathLike | None = None, namespace: str = "") -> None:
        if int(max_entries) < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = int(max_entries)
        self.folder = Path(folder) / namespace if folder is not None else None
        self._items: OrderedDict[str, ImageEmbedding] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def keys(self) -> list[str]:
        """Keys in memory, least recently used first."""
        return list(self._items)

    def get(self, key: str) -> ImageEmbedding | None:
        """The embedding for ``key`` (memory, then disk) or None; marks it most recently used."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return item
        item = self._load(key)
        if item is not None:
            self.disk_hits += 1
            self._remember(key, item)
            return item
        self.misses += 1
        return None

    def put(self, key: str, item: ImageEmbedding) -> None:
        """Store ``item`` (evicting the least recently used beyond ``max_entries``; also on disk if enabled)."""
        self._remember(key, item)
        if self.folder is not None:
            self._save(key, item)

    def clear(self) -> None:
        """Forget the in-memory entries (files on disk stay)."""
        self._items.clear()

    def _remember(self, key: str, item: ImageEmbedding) -> None:
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def _save(self, key: str, item: ImageEmbedding) -> None:
        with atomic_path(self._path(key)) as tmp:  # never a half-written file under the final name
            torch.save({"features": item.features, "original_size": list(item.original_size),
                        "input_size": list(item.input_size)}, tmp)

    def _load(self, key: str) -> ImageEmbedding | None:
        if self.folder is None:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            return ImageEmbedding(data["features"], tuple(data["original_size"]), tuple(data["input_size"]))
        except Exception as exc:  # noqa: BLE001 - an unreadable cache file is recomputed
            warnings.warn(f"ignoring unreadable embedding file {path}: {exc}", RuntimeWarning, stacklevel=3)
            return None


class SamSegmenter(BaseSegmenter):
    """SAM behind the camseg segmenter interface, one encoder pass per distinct image.

    Give either a model type (the checkpoint is found or downloaded, see
    :func:`~camseg.segmenters.checkpoints.resolve_checkpoint`) or an already
    built ``segment_anything.modeling.Sam`` as ``model`` (used as it is, on
    its own device, mode unchanged).

    Args:
        model_type: ``"vit_b"`` (default), ``"vit_l"`` or ``"vit_h"``.
        checkpoint: explicit checkpoint path (else ``$CAMSEG_SAM_CHECKPOINT``,
            the cache folder, or a download).
        model: a built ``Sam`` to use instead of loading a checkpoint.
        device: ``"auto"`` (CUDA when available, else CPU), or a torch
            device. With ``model``, must be ``"auto"`` or the model's device.
        multimask: ``"auto"`` (3 masks for a single point, keep the highest
            predicted IoU; 1 mask for several points), True (always 3, keep
            the best) or False (always 1).
        cache_size: embeddings kept in memory (LRU; 4 MiB each).
        cache_dir: folder for an on-disk embedding cache (None: memory only).
        batch_size: images per encoder pass in :meth:`prepare` (halved
            automatically on CUDA out-of-memory).
        download: download a missing checkpoint (else raise).
        base_url: download location (default the official one).
        progress: progress bar while downloading.
        name: backend name in results (default ``"sam-<model_type>"``, or
            ``"sam"`` with ``model``).
        model_id: names the model in the disk cache (default
            ``"<model_type>-<checkpoint file name>"``; required with ``model``
            and ``cache_dir``).
        precision: the image encoder's arithmetic: ``"auto"`` (mixed
            precision, bf16 where supported else fp16, on CUDA; fp32 on the
            CPU), ``"fp32"``, ``"fp16"`` or ``"bf16"`` (the last two on CUDA
            only). Embeddings are stored as float32 either way; the disk
            cache keeps each precision apart.
        batch_prompts: how :meth:`~camseg.segmenters.base.BaseSegmenter.predict_batch` decodes K prompts: True (one
            prompt-encoder/mask-decoder pass), False (K passes), ``"auto"``
            (one pass on CUDA, K passes on the CPU, where batching was
            measured slower: ``benchmarks/predict_batch.py``). Masks are the
            same either way.

    Attributes:
        encoder_calls: image-encoder forward passes run so far.
        images_encoded: images encoded so far (``== encoder_calls`` without batching).
        cache: the :class:`EmbeddingCache`.

    Raises:
        CheckpointError: no checkpoint and none can be downloaded, or a corrupt one.
        ValueError: unknown model type, bad option.
    """

    def __init__(
        self,
        model_type: str = "vit_b",
        checkpoint: str | os.PathLike | None = None,
        *,
        model: Sam | None = None,
        device: str | torch.device = "auto",
        multimask: bool | str = "auto",
        cache_size: int = 64,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 4,
        download: bool = True,
        base_url: str | None = None,
        progress: bool = True,
        name: str | None = None,
        model_id: str | None = None,
        precision: str = "auto",
        batch_prompts: bool | str = "auto",
    ) -> None:
        super().__init__()
        from segment_anything import SamPredictor
        from segment_anything.modeling import Sam

        if multimask not in ("auto", True, False):
            raise ValueError(f"multimask must be 'auto', True or False, got {multimask!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in ("auto", "fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32', 'fp16' or 'bf16', got {precision!r}")
        if batch_prompts not in ("auto", True, False):
            raise ValueError(f"batch_prompts must be 'auto', True or False, got {batch_prompts!r}")
        self.multimask = multimask
        self.batch_size = int(batch_size)
        if model is not None:
            if not isinstance(model, Sam):
                raise TypeError(f"model must be a segment_anything.modeling.Sam, got {type(model).__name__}")
            if str(device) != "auto" and resolve_device(device) != model.device:
                raise ValueError(f"device={device!r} but the given model is on {model.device}; "
                                 "move the model yourself or pass device='auto'")
            if cache_dir is not None and model_id is None:
                raise ValueError("with model= and cache_dir=, give model_id= to name the model's embeddings on disk")
            self.model, self.model_type, self.checkpoint = model, None, None
            self.name = name or "sam"
        else:
            if model_type not in SAM_MODEL_TYPES:
                raise ValueError(f"unknown SAM model type {model_type!r}; expected one of {', '.join(SAM_MODEL_TYPES)}")
            path = resolve_checkpoint(model_type, checkpoint, download=download, base_url=base_url, progress=progress)
            self.model = load_sam(model_type, path, device)
            self.model_type, self.checkpoint = model_type, path
            self.name = name or f"sam-{model_type}"
            model_id = model_id or f"{model_type}-{path.name}"
        self.predictor = SamPredictor(self.model)
        dev = self.device
        if precision in ("fp16", "bf16") and dev.type != "cuda":
            raise ValueError(f"precision={precision!r} needs CUDA; the model is on {dev}")
        self.encoder_dtype: torch.dtype | None = (
            autocast_dtype(dev) if precision == "auto" else
            {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision])
        self.batch_prompts = (dev.type == "cuda") if batch_prompts == "auto" else bool(batch_prompts)
        suffix = "" if self.encoder_dtype is None else f"-{str(self.encoder_dtype).removeprefix('torch.')}"
        self.cache = EmbeddingCache(cache_size, cache_dir, (model_id or "") + suffix)
        self._resize: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self.encoder_calls = 0
        self.images_encoded = 0

    @property
    def device(self) -> torch.device:
        """Device of the model."""
        return self.model.device

    # -- embeddings --------------------------------------------------------

    def embedding(self, image: np.ndarray) -> torch.Tensor:
        """SAM's embedding of ``image`` (uint8 (H, W, 3) RGB), from the cache or encoded now.

        Returns:
            float32 (1, C, h, w) on the CPU ((1, 256, 64, 64) for released models).
        """
        image = validate_image(image)
        return self._embedding(image, image_key(image)).features

    def prepare(self, images: Iterable[np.ndarray] | np.ndarray, batch_size: int | None = None) -> int:
        """Encode the images not yet cached, ``batch_size`` per encoder pass.

        Args:
            images: uint8 RGB images (H, W, 3), as a sequence or an array
                (N, H, W, 3); sizes may differ. Repeated images are encoded once.
            batch_size: images per pass (default the constructor's).

        Returns:
            The number of images encoded (0 when all were cached).

        Note:
            Only the last ``cache_size`` images stay in memory; prepare at
            most that many at a time (or use ``cache_dir``).
        """
        bs = self.batch_size if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        todo: dict[str, np.ndarray] = {}
        for i, image in enumerate(images):
            try:
                image = validate_image(image)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"images[{i}]: {exc}") from None
            key = image_key(image)
            if key not in todo and self.cache.get(key) is None:
                todo[key] = image
        if len(todo) > self.cache.max_entries and self.cache.folder is None:
            warnings.warn(f"prepare() got {len(todo)} new images but the cache holds {self.cache.max_entries}; "
                          "the first ones will be evicted before use (raise cache_size or set cache_dir)",
                          RuntimeWarning, stacklevel=2)
        keys, pending = list(todo), list(todo.values())
        start = 0
        while start < len(pending):
            chunk = pending[start:start + bs]
            try:
                embeddings = self._encode(chunk)
            except torch.cuda.OutOfMemoryError:
                if bs == 1:
                    raise
                bs = max(1, bs // 2)
                torch.cuda.empty_cache()
                continue
            for key, emb in zip(keys[start:start + len(chunk)], embeddings, strict=True):
                self.cache.put(key, emb)
            start += len(chunk)
        return len(pending)

    def _embedding(self, image: np.ndarray, key: str) -> ImageEmbedding:
        emb = self.cache.get(key)
        if emb is None:
            emb = self._encode([image])[0]
            self.cache.put(key, emb)
        return emb

    @torch.no_grad()
    def _encode(self, images: list[np.ndarray]) -> list[ImageEmbedding]:
        """One image-encoder pass over ``images`` (validated uint8 RGB), exactly as ``SamPredictor.set_image``."""
        batch, sizes = [], []
        for image in images:
            resized = self.predictor.transform.apply_image(image)  # long side -> encoder input size
            x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
            sizes.append(((int(image.shape[0]), int(image.shape[1])), (int(x.shape[-2]), int(x.shape[-1]))))
            batch.append(self.model.preprocess(x))  # normalise, pad to a square
        with autocast(self.device, enabled=self.encoder_dtype is not None, dtype=self.encoder_dtype):
            features = self.model.image_encoder(torch.cat(batch))
        self.encoder_calls += 1
        self.images_encoded += len(images)
        return [ImageEmbedding(features[i:i + 1].float().cpu().clone(), original, inp)
                for i, (original, inp) in enumerate(sizes)]

    # -- the segmenter protocol --------------------------------------------

    def _set_image(self, image: np.ndarray) -> None:
        emb = self._embedding(image, image_key(image))
        p = self.predictor
        p.reset_image()
        p.features = emb.features.to(self.device)
        p.original_size = emb.original_size
        p.input_size = emb.input_size
        p.is_image_set = True

    def _predict(self, coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
        masks, scores = self._decode(coords[None], labels[None])
        return masks[0], float(scores[0])

    def _predict_batch(self, coords: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, float]]:
        if not self.batch_prompts:
            return super()._predict_batch(coords, labels)
        masks, scores = self._decode(coords, labels)
        return [(m, float(s)) for m, s in zip(masks, scores, strict=True)]

    @torch.no_grad()
    def _decode(self, coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One prompt-encoder/mask-decoder pass over K prompts of n points each.

        Does what ``SamPredictor.predict`` does for each prompt (the best of 3
        masks for a single point with ``multimask="auto"``), except that the
        chosen low-resolution mask logits (256 x 256) are resized straight to
        the image: SAM's two bilinear steps (up to the 1024 x 1024 input frame,
        crop, down to (H, W)) are linear and separable, so they are applied as
        one matrix per axis (:meth:`_resize_matrices`), without the 1024 x 1024
        intermediate.

        Args:
            coords: float (K, n, 2) (x, y) in image pixels; labels: int64 (K, n).

        Returns:
            bool (K, H, W) masks and float (K,) predicted IoUs.
        """
        p, model = self.predictor, self.model
        n = coords.shape[1]
        multi = n == 1 if self.multimask == "auto" else bool(self.multimask)
        pts = torch.as_tensor(p.transform.apply_coords(coords, p.original_size), dtype=torch.float,
                              device=self.device)
        labs = torch.as_tensor(labels, dtype=torch.int, device=self.device)
        sparse, dense = model.prompt_encoder(points=(pts, labs), boxes=None, masks=None)
        low, iou = model.mask_decoder(image_embeddings=p.features, image_pe=model.prompt_encoder.get_dense_pe(),
                                      sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                      multimask_output=multi)
        best = iou.argmax(1)
        rows = torch.arange(len(best), device=best.device)
        my, mx = self._resize_matrices(low.shape[-2:], p.input_size, p.original_size)
        logits = my @ low[rows, best].float() @ mx.T  # (K, H, W)
        masks = (logits > model.mask_threshold).cpu().numpy()
        return masks, iou[rows, best].float().cpu().numpy()

    def _resize_matrices(self, low_size, input_size, original_size) -> tuple[torch.Tensor, torch.Tensor]:
        """(H, h) and (W, w) matrices equal to ``Sam.postprocess_masks`` on each axis: bilinear
        up to the encoder's square input, crop to ``input_size``, bilinear down to ``original_size``."""
        key = (tuple(low_size), tuple(input_size), tuple(original_size))
        if key not in self._resize:
            side = self.model.image_encoder.img_size

            def axis(n_low: int, n_input: int, n_out: int) -> torch.Tensor:
                eye = torch.eye(n_low, device=self.device)[None, :, :, None]  # channel c: unit impulse at c
                up = F.interpolate(eye, (side, 1), mode="bilinear", align_corners=False)[:, :, :n_input]
                down = F.interpolate(up, (n_out, 1), mode="bilinear", align_corners=False)
                return down[0, :, :, 0].T.contiguous()  # (n_out, n_low)

            self._resize[key] = (axis(key[0][0], key[1][0], key[2][0]), axis(key[0][1], key[1][1], key[2][1]))
        return self._resize[key]
