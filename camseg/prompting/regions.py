"""Region selection: which segmented region is the object the CAM explains.

:class:`MaskScoring`, camseg's prompt strategy, works in four steps, each a
small piece you can change alone::

    CAM ──Proposal──▶ candidate points ──segmenter──▶ Regions (distinct masks)
        ──RegionEvidence──▶ what each region looks like (CAM, classifier)
        ──RegionScorer──▶ a score per region ──best_region──▶ the winner
        ──deepest_point / background_points──▶ Prompts

* :class:`Proposal`: candidate points on a grid where the CAM is high, each
  segmented with one foreground point; duplicates merged, counting how many
  points led to each region (agreement).
* :class:`RegionEvidence`: everything known about one image's regions,
  computed on demand and cached: CAM support, whether the CAM's peak is
  inside, agreement, size, and what the classifier says when it sees a
  region alone (``similarity``, ``keep``) or the image without it
  (``deletion``).
* Scorers (:class:`RegionScorer`, one class each): :class:`CamSupportScore`
  (CAM only), :class:`SimilarityScore` (the published score),
  :class:`KeepScore`, :class:`DeletionScore`, :class:`RemovalScore`, and
  :class:`LinearScore`, a logistic combination of evidence features fitted on
  validation data (:func:`fit_linear_score`). The default,
  :data:`FITTED_SCORE`, is one, fitted on the wide validation set; only the
  ``shortlist`` regions with the most CAM support compete. A scorer gives a
  cheap upper bound per region (``bound``) and the exact scores of the
  regions asked for (``score``).
* :func:`best_region`: a pure branch-and-bound search; regions are scored in
  order of their bound until none left can beat the best, so it picks what
  scoring every region would, with fewer classifier runs.

Background points come from the shared helpers of :mod:`camseg.prompting.prompts`
(:func:`~camseg.prompting.prompts.background_points`): on a rejected distractor region
when there is one, else on low-CAM pixels far from the winner.

Conventions: points (x, y) in pixels, arrays (K, 2); masks bool (H, W) or
(K, H, W); CAMs float (H, W) in [0, 1]; tensors live on the classifier's
device.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import cv2
import numpy as np
import torch
from torch import nn

from camseg.data.dataset import normalize
from camseg.models.cam import eval_mode
from camseg.prompting.prompts import (
    PromptContext,
    Prompts,
    background_points,
    deepest_point,
    stack_prompts,
    strongest_region,
)
from camseg.utils.devices import model_device

__all__ = [
    "FEATURES", "FITTED_SCORE", "CamSupportScore", "DeletionScore", "KeepScore", "LinearScore", "MaskScoring",
    "CLASSIFIER_FEATURES", "CLASSIFIER_RUNS", "Proposal", "RegionEvidence", "RegionScorer", "Regions", "RemovalScore",
    "SimilarityScore", "best_region", "classifier_outputs", "fit_linear_score", "run_classifier", "shortlist",
]


# --------------------------------------------------------------------------
# 1. Candidate regions


@dataclass(frozen=True)
class Regions:
    """The distinct regions segmented from one image's candidate points.

    Attributes:
        masks: bool (K, H, W).
        seeds: int64 (K,), how many candidate points led to each region.
    """

    masks: np.ndarray
    seeds: np.ndarray

    def __len__(self) -> int:
        return len(self.masks)


@dataclass(frozen=True)
class Proposal:
    """Candidate points where the CAM is high, segmented into distinct regions.

    Attributes:
        threshold: candidates are grid points with CAM >= threshold (if none: the whole grid).
        stride: grid spacing in pixels.
        max_candidates: at most this many points, highest CAM first (see :class:`MaskScoring`
            for how the default was chosen).
        max_area: regions larger than this fraction of the image are dropped.
        min_area: regions smaller than this many pixels are dropped.
    """

    threshold: float = 0.2
    stride: int = 3
    max_candidates: int = 64
    max_area: float = 0.5
    min_area: int = 6

    def points(self, cam: np.ndarray) -> np.ndarray:
        """Candidate points float32 (K, 2) in (x, y) order, highest CAM first."""
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        h, w = cam.shape
        off = self.stride // 2
        ys, xs = np.mgrid[off:h:self.stride, off:w:self.stride]
        ys, xs = ys.ravel(), xs.ravel()
        vals = cam[ys, xs]
        keep = vals >= self.threshold
        if not keep.any():
            keep = np.ones_like(keep)
        order = np.argsort(-vals[keep], kind="stable")[: self.max_candidates]
        return np.stack([xs[keep][order], ys[keep][order]], 1).astype(np.float32)

    def regions(self, segmenter: object, image: np.ndarray, cam: np.ndarray) -> Regions:
        """Segment every candidate point of ``image`` (uint8 (H, W, 3)) and merge duplicates.

        Uses ``segmenter.predict_batch(coords (K, 1, 2), labels (K, 1))`` when the
        segmenter has it (one call for all candidates), else one ``predict`` each.
        """
        h, w = cam.shape
        pts = self.points(cam)
        segmenter.set_image(image)
        if hasattr(segmenter, "predict_batch"):
            results = segmenter.predict_batch(pts[:, None, :].astype(np.float32), np.ones((len(pts), 1), np.int64))
        else:
            results = [segmenter.predict(pt[None], np.ones(1, np.int64)) for pt in pts]
        seen: dict[bytes, int] = {}
        masks: list[np.ndarray] = []
        seeds: list[int] = []
        for res in results:
            mask = np.asarray(res.mask, bool)
            area = int(mask.sum())
            if area < self.min_area or area > self.max_area * h * w:
                continue
            key = np.packbits(mask).tobytes()
            if key in seen:
                seeds[seen[key]] += 1
                continue
            seen[key] = len(masks)
            masks.append(mask)
            seeds.append(1)
        stacked = np.stack(masks) if masks else np.zeros((0, h, w), bool)
        return Regions(stacked, np.asarray(seeds, np.int64))


# --------------------------------------------------------------------------
# 2. What is known about each region


FEATURES: tuple[str, ...] = ("cam_support", "cam_mass", "peak_inside", "agreement", "area", "border",
                             "solidity", "uniformity", "contrast", "similarity", "keep", "deletion", "removal")
"""Evidence features of a region, all in [0, 1] (see :meth:`RegionEvidence.features`)."""

CLASSIFIER_FEATURES: frozenset[str] = frozenset({"similarity", "keep", "deletion", "removal"})
"""Features that need classifier runs (the rest are cheap)."""

CLASSIFIER_RUNS: dict[str, str] = {"keep": "alone", "similarity": "alone", "deletion": "deleted", "removal": "removed"}
"""Which classifier run each classifier feature comes from (the region alone, shared by ``keep`` and
``similarity``; the image with the region deleted; or with it inpainted away)."""

CLASSIFIER_RUN_KINDS: tuple[str, ...] = ("alone", "deleted", "removed")
"""The classifier runs, in the order a batched search (:class:`MaskScoring`) refines a region's bound."""


def _dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0 or not len(masks):
        return masks
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])


class RegionEvidence:
    """What is known about one image's candidate regions, computed when first asked and cached.

    Args:
        regions: the candidate regions.
        cam: float (H, W) in [0, 1], the CAM of ``target``.
        target: the class the CAM explains.
        classifier: the classifier (None: only the CAM features work).
        normalized: float (3, H, W), the image as the classifier sees it.
        whole: (probabilities (C,), features (D,)) of the whole image, if already known.
        batch_size: regions per classifier batch.
        image: uint8 (H, W, 3) RGB, the image itself (needed by ``uniformity``,
            ``contrast`` and ``removal``).
    """

    def __init__(self, regions: Regions, cam: np.ndarray, target: int, classifier: nn.Module | None = None,
                 normalized: torch.Tensor | None = None, whole: tuple[torch.Tensor, torch.Tensor] | None = None,
                 batch_size: int = 128, image: np.ndarray | None = None) -> None:
        if image is not None:
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.shape != (*np.shape(cam), 3):
                raise ValueError(f"image must be uint8 (H, W, 3) matching the CAM's {np.shape(cam)}, got "
                                 f"{image.dtype} {image.shape}")
        self.image = image
        self.regions, self.cam, self.target = regions, np.asarray(cam, np.float32), int(target)
        self.classifier, self.batch_size = classifier, batch_size
        self.device = model_device(classifier) if classifier is not None else torch.device("cpu")
        self.normalized = normalized.to(self.device) if normalized is not None else None
        self._whole = whole
        self._cache: dict[str, np.ndarray] = {}
        self._grown_by: dict[int, np.ndarray] = {}
        self._alone = np.full((len(regions), 2), np.nan)  # keep, similarity
        self._deleted = np.full(len(regions), np.nan)
        self._removed = np.full(len(regions), np.nan)
        self.classifier_images = 0
        """Images run through the classifier so far (regions alone and deleted)."""

    def __len__(self) -> int:
        return len(self.regions)

    # cheap, CAM-based -------------------------------------------------------

    def _grown(self, radius: int) -> np.ndarray:
        """The regions' masks grown by ``radius`` pixels, bool (K, H, W), made once per radius."""
        if radius not in self._grown_by:
            self._grown_by[radius] = _dilate(self.regions.masks, radius)
        return self._grown_by[radius]

    def _cached(self, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = np.asarray(make(), np.float64)
        return self._cache[key]

    def cam_support(self, dilation: int = 2) -> np.ndarray:
        """Mean CAM over each region grown by ``dilation`` pixels, (K,).

        Grad-CAM often peaks on an object's edges and corners, just outside it,
        hence the margin.
        """
        return self._cached(f"support{dilation}", lambda: [float(self.cam[m].mean())
                                                           for m in self._grown(dilation)])

    def cam_mean(self) -> np.ndarray:
        """Mean CAM inside each region, (K,) (ties between equal scores go to the higher)."""
        return self.cam_support(0)

    def cam_mass(self, dilation: int = 2) -> np.ndarray:
        """Fraction of the CAM's total mass inside each region grown by ``dilation``, (K,)."""
        total = float(self.cam.sum()) or 1.0
        return self._cached(f"mass{dilation}", lambda: [float(self.cam[m].sum()) / total
                                                        for m in self._grown(dilation)])

    def peak_inside(self, dilation: int = 1) -> np.ndarray:
        """1.0 where the region grown by ``dilation`` holds the CAM's maximum, else 0.0, (K,)."""
        y, x = np.unravel_index(int(np.argmax(self.cam)), self.cam.shape)
        return self._cached(f"peak{dilation}", lambda: self._grown(dilation)[:, y, x])

    def agreement(self, seed_scale: float = 4.0) -> np.ndarray:
        """``1 - exp(-n / seed_scale)``, n = candidate points that led to the region, (K,); 1 if seed_scale <= 0."""
        if seed_scale <= 0:
            return np.ones(len(self))
        return 1.0 - np.exp(-self.regions.seeds / seed_scale)

    def area(self) -> np.ndarray:
        """Region area as a fraction of the image, (K,)."""
        h, w = self.cam.shape
        return self._cached("area", lambda: self.regions.masks.reshape(len(self), -1).sum(1) / (h * w))

    def border(self) -> np.ndarray:
        """Fraction of the image border each region covers, (K,)."""
        def make():
            m = self.regions.masks
            edge = np.concatenate([m[:, 0, :], m[:, -1, :], m[:, :, 0], m[:, :, -1]], axis=1)
            return edge.mean(1) if len(m) else np.zeros(0)
        return self._cached("border", make)

    def solidity(self) -> np.ndarray:
        """Area over the area of the convex hull of each region, (K,): 1 for a convex region,
        low for a ragged leak into the background."""
        def make():
            out = []
            for m in self.regions.masks:
                contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours))) if contours else 0.0
                out.append(min(float(m.sum()) / max(hull, 1.0), 1.0))
            return out
        return self._cached("solidity", make)

    def _need_image(self) -> np.ndarray:
        if self.image is None:
            raise ValueError("this feature needs the image (RegionEvidence(..., image=uint8 (H, W, 3)))")
        return self.image

    def uniformity(self) -> np.ndarray:
        """``1 - s / 64`` (clipped to [0, 1]), s = the colour's standard deviation inside each
        region (mean over RGB, 0..255 scale), (K,): 1 for a flat colour."""
        def make():
            img = self._need_image().astype(np.float32)
            return [float(np.clip(1.0 - img[m].std(0).mean() / 64.0, 0.0, 1.0)) for m in self.regions.masks]
        return self._cached("uniformity", make)

    def contrast(self, ring: int = 2) -> np.ndarray:
        """Distance between the mean colour inside each region and in a ``ring``-pixel band
        around it, over 255 (clipped to [0, 1]), (K,)."""
        def make():
            img = self._need_image().astype(np.float32)
            out = []
            for m, grown in zip(self.regions.masks, self._grown(ring), strict=True):
                band = grown & ~m
                out.append(float(np.clip(np.linalg.norm(img[m].mean(0) - img[band].mean(0)) / 255.0, 0.0, 1.0))
                           if band.any() else 0.0)
            return out
        return self._cached(f"contrast{ring}", make)

    # classifier-based ------------------------------------------------------

    def whole(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (C,) and penultimate features (D,) of the whole image."""
        if self._whole is None:
            probs, feats = classifier_outputs(self.classifier, self.normalized[None], self.batch_size)
            self._whole = (probs[0], feats[0])
        return self._whole

    def _need_classifier(self) -> None:
        if self.classifier is None or self.normalized is None:
            raise ValueError("this feature needs the classifier and the normalised image")

    # One classifier run per region and kind (see CLASSIFIER_RUNS): ``missing`` says which regions
    # still need it, ``run_inputs`` builds their normalised batch, ``store_run`` keeps what the
    # classifier said. The features call them for one image (``_fill``); :func:`run_classifier`
    # does the same for the regions of many images in shared batches. Both store the same numbers
    # through the same code, so a feature does not depend on which of the two computed it (up to
    # the classifier's own float differences between batch sizes).

    def _store(self, run: str) -> np.ndarray:
        if run not in CLASSIFIER_RUN_KINDS:
            raise ValueError(f"unknown classifier run {run!r}; expected one of {', '.join(CLASSIFIER_RUN_KINDS)}")
        return {"alone": self._alone[:, 0], "deleted": self._deleted, "removed": self._removed}[run]

    def missing(self, run: str, idx: np.ndarray) -> list[int]:
        """The regions of ``idx`` (distinct, in order) that ``run`` (``"alone"``, ``"deleted"``,
        ``"removed"``) has not been computed for yet."""
        store = self._store(run)
        return list(dict.fromkeys(int(k) for k in np.asarray(idx, np.int64).reshape(-1) if np.isnan(store[k])))

    def known(self, feature: str, idx: np.ndarray) -> np.ndarray:
        """The classifier feature ``feature`` (``keep``, ``similarity``, ``deletion``,
        ``removal``) of the regions ``idx`` where already computed, NaN elsewhere; float64 (k,).
        Runs nothing."""
        idx = np.asarray(idx, np.int64)
        values = {"keep": lambda: self._alone[idx, 0], "similarity": lambda: self._alone[idx, 1],
                  "deletion": lambda: self._deleted[idx], "removal": lambda: self._removed[idx]}
        if feature not in values:
            raise ValueError(f"{feature!r} is not a classifier feature; expected one of "
                             f"{', '.join(sorted(CLASSIFIER_FEATURES))}")
        return values[feature]().copy()

    def known_range(self, feature: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds (low, high), float64 (k,) each, of the classifier feature ``feature`` of the
        regions ``idx`` without running anything: the value itself where computed, else
        [0, 1], and for ``deletion`` and ``removal`` [0, p], p the target's probability on the
        whole image (clipped to [0, 1]): a drop from p is at most p."""
        value = self.known(feature, idx)
        high = 1.0
        if feature in ("deletion", "removal") and (
                self._whole is not None or (self.classifier is not None and self.normalized is not None)):
            high = float(np.clip(float(self.whole()[0][self.target]), 0.0, 1.0))
        unknown = np.isnan(value)
        return np.where(unknown, 0.0, value), np.where(unknown, high, value)

    def run_inputs(self, run: str, todo: Sequence[int], radius: int = 3) -> torch.Tensor:
        """The classifier's input for ``run`` on the regions ``todo``: float (k, 3, H, W) on the
        classifier's device, one normalised image per region: ``"alone"``: the region alone (the
        rest 0, the dataset mean); ``"deleted"``: the image with the region set to 0;
        ``"removed"``: the image with the region (grown by one pixel) inpainted (Telea,
        ``radius`` px)."""
        self._store(run)
        self._need_classifier()
        todo = [int(k) for k in todo]
        if run == "removed":
            image = self._need_image()
            painted = np.stack([cv2.inpaint(image, self._grown(1)[k].astype(np.uint8), radius, cv2.INPAINT_TELEA)
                                for k in todo])
            return normalize(painted).to(self.device)
        m = torch.from_numpy(self.regions.masks[todo]).to(self.device)[:, None]
        if run == "alone":
            return torch.where(m, self.normalized[None], 0.0)
        return torch.where(m, 0.0, self.normalized[None])

    def store_run(self, run: str, todo: Sequence[int], probs: torch.Tensor, feats: torch.Tensor) -> None:
        """Keep the classifier's softmax ``probs`` (k, C) and penultimate ``feats`` (k, D) for
        ``run`` on the regions ``todo`` (the rows of :meth:`run_inputs` ``(run, todo)``)."""
        todo = [int(k) for k in todo]
        self._store(run)
        self.classifier_images += len(todo)
        if run == "alone":
            sim = torch.nn.functional.cosine_similarity(feats, self.whole()[1][None]).clamp(0, 1)
            self._alone[todo, 0] = probs[:, self.target].clamp(0, 1).float().cpu().numpy()
            self._alone[todo, 1] = sim.float().cpu().numpy()
        else:
            before = float(self.whole()[0][self.target])
            store = self._deleted if run == "deleted" else self._removed
            store[todo] = np.clip(before - probs[:, self.target].float().cpu().numpy(), 0.0, 1.0)

    def _fill(self, run: str, idx: np.ndarray, radius: int = 3) -> None:
        """Run the classifier for ``run`` on the regions of ``idx`` not yet run, in one batch."""
        todo = self.missing(run, idx)
        if todo:
            self._need_classifier()
            probs, feats = classifier_outputs(self.classifier, self.run_inputs(run, todo, radius), self.batch_size)
            self.store_run(run, todo, probs, feats)

    def keep(self, idx: np.ndarray) -> np.ndarray:
        """Probability of the target when the classifier sees only the region (rest at the
        dataset mean, 0 in the normalised input), for the regions ``idx``."""
        idx = np.asarray(idx, np.int64)
        self._fill("alone", idx)
        return self._alone[idx, 0]

    def similarity(self, idx: np.ndarray) -> np.ndarray:
        """Cosine similarity (clipped at 0) of the classifier's penultimate features of the
        region alone with those of the whole image, for the regions ``idx``."""
        idx = np.asarray(idx, np.int64)
        self._fill("alone", idx)
        return self._alone[idx, 1]

    def deletion(self, idx: np.ndarray) -> np.ndarray:
        """How much the target's probability drops when the region is removed (set to the
        dataset mean), clipped to [0, 1], for the regions ``idx``."""
        idx = np.asarray(idx, np.int64)
        self._fill("deleted", idx)
        return self._deleted[idx]

    def removal(self, idx: np.ndarray, radius: int = 3) -> np.ndarray:
        """How much the target's probability drops when the region (grown by one pixel) is
        painted over from its surroundings (``cv2.inpaint``, Telea, ``radius`` px), clipped to
        [0, 1], for the regions ``idx``.

        Unlike :meth:`deletion`, which fills the region with one colour and so leaves its
        silhouette (a shape the classifier may still recognise), inpainting takes the
        object away.
        """
        idx = np.asarray(idx, np.int64)
        self._fill("removed", idx, radius)
        return self._removed[idx]

    def features(self, idx: np.ndarray | None = None, names: Sequence[str] = FEATURES) -> dict[str, np.ndarray]:
        """Named features (each (k,), in [0, 1]) of the regions ``idx`` (default: all).

        ``cam_support``, ``cam_mass`` (dilation 2), ``peak_inside`` (dilation 1),
        ``agreement`` (seed_scale 4), ``area``, ``border``, ``solidity``,
        ``uniformity``, ``contrast`` (ring 2), ``similarity``, ``keep``,
        ``deletion``, ``removal``.
        """
        idx = np.arange(len(self)) if idx is None else np.asarray(idx, np.int64)
        makers = {"cam_support": lambda: self.cam_support()[idx], "cam_mass": lambda: self.cam_mass()[idx],
                  "peak_inside": lambda: self.peak_inside()[idx], "agreement": lambda: self.agreement()[idx],
                  "area": lambda: self.area()[idx], "border": lambda: self.border()[idx],
                  "solidity": lambda: self.solidity()[idx], "uniformity": lambda: self.uniformity()[idx],
                  "contrast": lambda: self.contrast()[idx], "removal": lambda: self.removal(idx),
                  "similarity": lambda: self.similarity(idx), "keep": lambda: self.keep(idx),
                  "deletion": lambda: self.deletion(idx)}
        unknown = [n for n in names if n not in makers]
        if unknown:
            raise ValueError(f"unknown features {unknown}; expected some of {', '.join(FEATURES)}")
        return {n: np.asarray(makers[n](), np.float64) for n in names}


@torch.no_grad()
def classifier_outputs(classifier: nn.Module, x: torch.Tensor, batch_size: int = 128) -> tuple[torch.Tensor, ...]:
    """Softmax probabilities (N, C) and penultimate features (N, D) (the input of the
    classifier's last ``nn.Linear``) of a normalised batch ``x`` (N, 3, H, W)."""
    head = _last_linear(classifier)
    probs, feats = [], []
    handle = head.register_forward_hook(lambda mod, inp, out: feats.append(inp[0].flatten(1)))
    try:
        for k in range(0, len(x), batch_size):
            probs.append(torch.softmax(classifier(x[k:k + batch_size]), 1))
    finally:
        handle.remove()
    return torch.cat(probs), torch.cat(feats)


def run_classifier(requests: Sequence[tuple[RegionEvidence, str, Sequence[int]]], batch_size: int = 8) -> int:
    """Compute classifier runs for the regions of many images in shared batches.

    Each request ``(evidence, run, regions)`` asks for ``run`` (``"alone"``, ``"deleted"``,
    ``"removed"``: :data:`CLASSIFIER_RUNS`) on some regions of one image; regions already
    computed are skipped. The inputs of all requests (:meth:`RegionEvidence.run_inputs`) go
    through the classifier together, ``batch_size`` images per forward pass, and each image's
    answers are stored in its evidence (:meth:`RegionEvidence.store_run`), as if it had run
    them itself. Requests for different classifiers run separately.

    Returns:
        How many images went through a classifier.
    """
    groups: dict[int, list[tuple[RegionEvidence, str, list[int]]]] = {}
    seen: set[tuple[int, str, int]] = set()
    for ev, run, idx in requests:
        todo = [k for k in ev.missing(run, idx) if (id(ev), run, k) not in seen]
        if not todo:
            continue
        ev._need_classifier()
        seen.update((id(ev), run, k) for k in todo)
        groups.setdefault(id(ev.classifier), []).append((ev, run, todo))
    total = 0
    for jobs in groups.values():
        x = torch.cat([ev.run_inputs(run, todo) for ev, run, todo in jobs])
        probs, feats = classifier_outputs(jobs[0][0].classifier, x, batch_size)
        start = 0
        for ev, run, todo in jobs:
            stop = start + len(todo)
            ev.store_run(run, todo, probs[start:stop], feats[start:stop])
            start = stop
        total += len(x)
    return total


def _last_linear(model: nn.Module) -> nn.Linear:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ValueError("MaskScoring needs a classifier whose last layer is an nn.Linear (its input = features)")
    return last


# --------------------------------------------------------------------------
# 3. Scorers


class RegionScorer(Protocol):
    """Scores an image's candidate regions; higher wins.

    ``bound(ev)`` is a cheap upper bound of every region's score (K,) (use
    ``inf`` where there is none); ``score(ev, idx)`` the exact scores (k,) of
    the regions ``idx``. :func:`best_region` scores regions in order of their
    bound and stops when no unscored bound reaches the best score.

    Optional, for :class:`MaskScoring`'s batched search (without them it
    scores image by image): ``classifier_features``, the classifier features
    (:data:`CLASSIFIER_FEATURES`) the score reads, and ``score_bounds(ev, idx)
    -> (lower, upper)``, float (k,) each, bounds of the scores given the
    classifier features computed so far (:meth:`RegionEvidence.known`).
    """

    name: str

    def bound(self, ev: RegionEvidence) -> np.ndarray: ...

    def score(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class CamSupportScore:
    """CAM only: support ** 1 x agreement; no classifier run (a baseline)."""

    classifier_features: ClassVar[tuple[str, ...]] = ()
    cam_dilation: int = 2
    seed_scale: float = 4.0
    name: str = "cam_support"

    def bound(self, ev: RegionEvidence) -> np.ndarray:
        return ev.cam_support(self.cam_dilation) * ev.agreement(self.seed_scale)

    def score(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        return self.bound(ev)[np.asarray(idx, np.int64)]


@dataclass(frozen=True)
class _ClassifierTimesCam:
    """A classifier term in [0, 1] x CAM support ** ``cam_weight`` x agreement.

    The CAM factors bound the score (the classifier term is at most 1), so a
    subclass only says which classifier term it multiplies: :meth:`term`, and
    names it (``feature``, one of :data:`CLASSIFIER_FEATURES`).
    """

    feature: ClassVar[str] = ""
    cam_weight: float = 0.5
    cam_dilation: int = 2
    seed_scale: float = 4.0

    def bound(self, ev: RegionEvidence) -> np.ndarray:
        return ev.cam_support(self.cam_dilation) ** self.cam_weight * ev.agreement(self.seed_scale)

    @property
    def classifier_features(self) -> tuple[str, ...]:
        return (self.feature,) if self.feature else ()

    def term(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        return self.term(ev, idx) * self.bound(ev)[idx]


@dataclass(frozen=True)
class SimilarityScore(_ClassifierTimesCam):
    """The published default: similarity x CAM support ** ``cam_weight`` x agreement.

    A region that *is* what the classifier saw in the whole image looks the same
    to it (similarity of penultimate features); the CAM support keeps regions
    the CAM points at; agreement trusts regions many candidate points lead to.
    """

    feature: ClassVar[str] = "similarity"
    name: str = "similarity"

    def term(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        return ev.similarity(idx)


@dataclass(frozen=True)
class KeepScore(_ClassifierTimesCam):
    """Probability of the target with the region alone x CAM support ** ``cam_weight`` x agreement."""

    feature: ClassVar[str] = "keep"
    name: str = "keep"

    def term(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        return ev.keep(idx)


@dataclass(frozen=True)
class DeletionScore(_ClassifierTimesCam):
    """Drop of the target's probability when the region is removed x CAM support ** ``cam_weight`` x agreement."""

    feature: ClassVar[str] = "deletion"
    name: str = "deletion"

    def term(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        return ev.deletion(idx)


@dataclass(frozen=True)
class RemovalScore(_ClassifierTimesCam):
    """Drop of the target's probability when the region is inpainted away x CAM support ** ``cam_weight``
    x agreement (:meth:`RegionEvidence.removal`)."""

    feature: ClassVar[str] = "removal"
    name: str = "removal"

    def term(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        return ev.removal(idx)


@dataclass(frozen=True)
class LinearScore:
    """A logistic combination of evidence features: ``sigmoid(bias + sum w_f * f)``.

    Fitted on validation regions by :func:`fit_linear_score`. Every feature lies
    in [0, 1], so replacing each classifier feature by 1 (positive weight) or 0
    (negative weight) bounds the score from above without running the classifier.

    Attributes:
        weights: ``((feature, weight), ...)``, features from :data:`FEATURES`.
        bias: the intercept.
    """

    weights: tuple[tuple[str, float], ...] = ()
    bias: float = 0.0
    name: str = "linear"

    def __post_init__(self) -> None:
        unknown = [f for f, _ in self.weights if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown features {unknown}; expected some of {', '.join(FEATURES)}")

    def _logit(self, ev: RegionEvidence, idx: np.ndarray, cheap_only: bool) -> np.ndarray:
        z = np.full(len(idx), self.bias)
        names = [f for f, _ in self.weights if not (cheap_only and f in CLASSIFIER_FEATURES)]
        feats = ev.features(idx, names)
        for f, w in self.weights:
            z = z + w * (feats[f] if f in feats else (1.0 if w > 0 else 0.0))
        return z

    @property
    def classifier_features(self) -> tuple[str, ...]:
        """The classifier features among the weights, in their order."""
        return tuple(f for f, _ in self.weights if f in CLASSIFIER_FEATURES)

    def bound(self, ev: RegionEvidence) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self._logit(ev, np.arange(len(ev)), True)))

    def score_bounds(self, ev: RegionEvidence, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (k,) of the scores of the regions ``idx`` from the classifier
        features computed so far (:meth:`RegionEvidence.known_range`: each one not yet computed
        is replaced by the end of its range that lowers, or raises, the score). Runs no
        classifier. With all known, both are :meth:`score` (the same sums in the same order);
        with none, ``upper`` is at most :meth:`bound` (the ranges lie within [0, 1])."""
        idx = np.asarray(idx, np.int64)
        cheap = ev.features(idx, [f for f, _ in self.weights if f not in CLASSIFIER_FEATURES])
        lo = np.full(len(idx), self.bias)
        hi = np.full(len(idx), self.bias)
        for f, w in self.weights:
            if f in cheap:
                v_lo = v_hi = cheap[f]
            else:
                low, high = ev.known_range(f, idx)
                v_lo, v_hi = (low, high) if w > 0 else (high, low)
            lo = lo + w * v_lo
            hi = hi + w * v_hi
        return 1.0 / (1.0 + np.exp(-lo)), 1.0 / (1.0 + np.exp(-hi))

    def score(self, ev: RegionEvidence, idx: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self._logit(ev, np.asarray(idx, np.int64), False)))


FITTED_SCORE = LinearScore((
    ("cam_support", 5.6081),
    ("cam_mass", 2.1124),
    ("peak_inside", 1.6174),
    ("agreement", 0.9851),
    ("area", -1.7173),
    ("border", -12.4945),
    ("solidity", -0.4408),
    ("uniformity", 4.5925),
    ("contrast", 1.3295),
    ("similarity", 2.1059),
    ("keep", 0.2241),
    ("removal", 2.5748),
), -9.7231, name="fitted")
"""camseg's default region score, a logistic combination of twelve evidence features.

Fitted by ``python -m camseg.evaluation.regionfit --data artifacts/data --checkpoint
artifacts/classifier-efficientnet_lite0.pt artifacts/classifier-efficientnet_lite0-seed1.pt
artifacts/classifier-efficientnet_lite0-seed2.pt --n 1000 --top 12`` (the build's three seeds,
wide recipe, 6 epochs, with their default CAM, :func:`camseg.models.classifier.default_cam`, and the
default offline segmenter, whose regions it scores) on the
first 500 images of the *wide validation set* (:func:`camseg.data.sets.validation_set`:
CIFAR-10 train photos of the val split, never a test set), 12 shortlisted regions each, pooled
over the seeds. On the other 500 it put the foreground point on the shape for 0.910 of the
images (mean of the seeds; 0.928 / 0.892 / 0.910) against 0.863 for the published
:class:`SimilarityScore` (``results/regionfit.json`` holds the whole output; a test checks
these weights against it). The test split and the shift suite only report it.

Those seeds were trained with 20 % of the shapes across the image border; the
build's classifiers now see 40 % (:data:`camseg.data.profiles.WIDE`). Refitted on
theirs (``results/regionfit-border0.4.json``), the score did no better on the
held-out half (0.864 for both), so these weights stay.
"""


def fit_linear_score(features: Sequence[Mapping[str, np.ndarray]], hits: Sequence[np.ndarray],
                     names: Sequence[str] = FEATURES, c: float = 1.0) -> LinearScore:
    """Fit a :class:`LinearScore` on validation regions.

    Args:
        features: per image, ``{feature: (K_i,)}`` (:meth:`RegionEvidence.features`).
        hits: per image, bool (K_i,): whether the region's foreground point
            would land on the object (the label to predict).
        names: the features to use.
        c: inverse L2 regularisation strength of the logistic regression.

    Returns:
        The fitted scorer (scikit-learn's ``LogisticRegression``, balanced classes).
    """
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([np.stack([np.asarray(f[n], np.float64) for n in names], 1) for f in features if len(hits)])
    y = np.concatenate([np.asarray(h, bool) for h in hits])
    if len(x) != len(y) or len(np.unique(y)) < 2:
        raise ValueError("fit_linear_score needs regions of both kinds (hits and misses), one label per region")
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(x, y)
    return LinearScore(tuple((n, float(w)) for n, w in zip(names, model.coef_[0], strict=True)),
                       float(model.intercept_[0]))


# --------------------------------------------------------------------------
# 4. The search


def shortlist(ev: RegionEvidence, k: int) -> np.ndarray:
    """The ``k`` regions (indices, int64) with the highest CAM support x agreement, best first;
    all regions when ``k <= 0``. Cheap: no classifier run."""
    prior = ev.cam_support() * ev.agreement()
    order = np.argsort(-prior, kind="stable")
    return order if k <= 0 else order[:k]


def best_region(bounds: np.ndarray, score: Callable[[np.ndarray], np.ndarray], tiebreak: np.ndarray | None = None,
                chunk: int = 4) -> tuple[int, np.ndarray]:
    """The region with the highest score, scoring as few regions as the bounds allow.

    Regions are scored in order of their upper bound, ``chunk`` at a time (the
    chunk doubles each round), until no unscored region's bound reaches the
    best score so far. Ties go to the higher ``tiebreak``. The choice is the
    one scoring every region would make, provided ``bounds`` really bound.

    Args:
        bounds: float (K,), an upper bound of each score (``inf`` for none).
        score: ``score(idx int (k,)) -> float (k,)``, exact scores.
        tiebreak: float (K,) or None.

    Returns:
        ``(index, scores)``, ``scores`` (K,) with NaN for regions never scored.

    >>> best_region(np.array([0.9, 0.5, 0.2]), lambda idx: np.array([0.4, 0.45, 0.1])[idx], chunk=1)[0]
    1
    """
    bounds = np.asarray(bounds, np.float64)
    if bounds.ndim != 1 or not len(bounds):
        raise ValueError(f"bounds must be a non-empty 1-D array, got shape {bounds.shape}")
    scores = np.full(len(bounds), np.nan)
    order = np.argsort(-bounds, kind="stable")
    k = 0
    while k < len(order):
        best = np.nanmax(scores) if not np.isnan(scores).all() else -np.inf
        if bounds[order[k]] < best:
            break
        idx = order[k:k + chunk]
        scores[idx] = score(idx)
        k, chunk = k + chunk, chunk * 2
    filled = np.where(np.isnan(scores), -np.inf, scores)
    ties = np.zeros(len(bounds)) if tiebreak is None else np.asarray(tiebreak, np.float64)
    return int(np.lexsort((ties, filled))[-1]), scores


# --------------------------------------------------------------------------
# The strategy


@dataclass
class MaskScoring:
    """Segment candidate points where the CAM is high; keep the region the scorer likes best.

    For each image: :class:`Proposal` makes the candidate regions (one
    segmenter call per candidate point, one image embedding), ``scorer``
    scores them from their :class:`RegionEvidence` and :func:`best_region`
    picks the winner; its deepest interior point is the foreground prompt.

    Background points (``n_background``): the rejected region with the highest
    mean CAM that does not overlap the winner (a distractor, used only if its
    score is at most ``distractor_max_score`` and ``distractor_ratio`` times
    the winner's), then low-CAM pixels (< ``low``) far from the winner.

    ``shortlist`` > 0 lets only that many regions compete, those with the
    highest CAM support x agreement (:func:`shortlist`), which bounds the
    classifier runs per image; 0: all of them. The default, 24, was chosen on
    validation data (seed-0 classifier, ``results/shortlists.json``): fg hit
    0.932 on the 500 held-out wide validation images, as with all regions
    competing, against 0.928 with 12; on 500 images of the standard val split
    every size gave 1.000.

    ``max_candidates``, the number of points segmented per image, is the
    largest cost of the choice; the default, 64 (96 before), was chosen on
    validation data, three seeds (``results/candidates-val.txt``): the
    smallest cap that loses at most one image of a set against 96 (wide
    validation set fg hit 0.882 against 0.882, border 0.957 against 0.958,
    low contrast 0.965 against 0.965) at 0.76-0.79x the CPU time of the
    choice; 48 lost two images of the wide set (0.67x), 32 five of the border
    set (0.54x).

    How the winner is found (``batched``): True (default) runs the searches of
    all images of the batch side by side (:meth:`decide`): each image asks for
    the classifier runs it needs next, and the runs of all images go through
    the classifier together, ``forward_batch`` images per pass
    (:func:`run_classifier`; None: 256 on a GPU, 8 on a CPU, where
    EfficientNet-Lite0 costs least per image in passes of about 8 images: 5.6
    ms an image on one thread against 6.7 in passes of 16 and 8.4 in passes of
    32). It also runs the classifier less: a region's score bounds tighten with
    each classifier run as it comes (the region alone first, then inpainted;
    :meth:`LinearScore.score_bounds`, where a probability drop is also at most
    the whole image's probability, :meth:`RegionEvidence.known_range`), and a
    region is run again only while its upper bound can still reach the best
    score found, best bound first. The choice is the one :func:`best_region`
    makes image by image over the same chunks of regions (``batched=False``,
    the reference path, :meth:`choose`), ties included, and so is the
    distractor: the same prompts, as long as the classifier gives an image the
    same numbers whatever batch it is in (on a CPU the last bits can differ
    between batch sizes; the tests and ``benchmarks/evaluate_rate.py`` compare
    the two paths). On 50 test images of the standard set (1-epoch
    classifier) the three MaskScoring strategies of ``camseg evaluate`` ran 22
    images an image through the classifier instead of 41. Scorers without
    ``classifier_features`` always take the reference path.

    Needs ``ctx.classifier`` and ``ctx.segmenter``. The classifier runs in
    eval mode (each module's own mode is restored afterwards) on its own
    device. Regions, scores and each image's choice are cached in
    ``ctx.extras``, so strategies differing only in their background points
    share the work and choose once per image.
    """

    threshold: float = 0.2
    stride: int = 3
    max_candidates: int = 64
    max_area: float = 0.5
    min_area: int = 6
    n_background: int = 0
    low: float = 0.2
    distractor_max_score: float = 0.2
    distractor_ratio: float = 0.25
    scorer: RegionScorer = FITTED_SCORE
    shortlist: int = 24
    batch_size: int = 128
    name: str = "mask_scoring"
    batched: bool = True
    forward_batch: int | None = None

    @property
    def proposal(self) -> Proposal:
        return Proposal(self.threshold, self.stride, self.max_candidates, self.max_area, self.min_area)

    def candidates(self, cam: np.ndarray) -> np.ndarray:
        """Candidate points (K, 2) in (x, y) order, highest CAM first."""
        return self.proposal.points(cam)

    def regions(self, ctx: PromptContext, i: int) -> tuple[list[np.ndarray], list[int]]:
        """Distinct candidate regions of image ``i`` (bool (H, W) each) and how many points led to each."""
        reg = self._regions(ctx, i)
        return list(reg.masks), [int(s) for s in reg.seeds]

    def _regions(self, ctx: PromptContext, i: int) -> Regions:
        key = ("regions", self.proposal, getattr(ctx.segmenter, "name", id(ctx.segmenter)))
        cache = ctx.extras.setdefault(key, {})
        if i not in cache:
            cache[i] = self.proposal.regions(ctx.segmenter, ctx.images[i], ctx.cams[i])
        return cache[i]

    def evidence(self, ctx: PromptContext, i: int) -> RegionEvidence:
        """The (cached) :class:`RegionEvidence` of image ``i``."""
        key = ("evidence", self.proposal, getattr(ctx.segmenter, "name", id(ctx.segmenter)), id(ctx.classifier))
        cache = ctx.extras.setdefault(key, {})
        if i not in cache:
            whole = self._whole(ctx)
            cache[i] = RegionEvidence(self._regions(ctx, i), ctx.cams[i], int(ctx.targets[i]), ctx.classifier,
                                      ctx.normalized[i], (whole[0][i], whole[1][i]), self.batch_size,
                                      image=np.asarray(ctx.images[i]))
        return cache[i]

    def _whole(self, ctx: PromptContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax (B, C) and penultimate features (B, D) of the whole images. Taken from the
        CAM's forward pass when the pipeline left them (``ctx.extras["classifier_outputs"]``)
        and the batch fits one classifier batch (the same forward pass as running it here)."""
        key = ("whole", id(ctx.classifier))
        if key not in ctx.extras:
            given = ctx.extras.get("classifier_outputs")
            if given is not None and len(given[0]) == ctx.batch <= self.batch_size:
                ctx.extras[key] = given
            else:
                x = ctx.normalized.to(model_device(ctx.classifier))
                ctx.extras[key] = classifier_outputs(ctx.classifier, x, self.batch_size)
        return ctx.extras[key]

    def _scores(self, ctx: PromptContext, i: int) -> dict:
        """The scorer's state for image ``i``, cached per scorer: ``ev``, ``bound`` (K,) (-inf
        outside the shortlist), ``upper`` (K,) (the scorer's bound everywhere), ``scores`` (K,)
        (NaN until scored), ``scored`` bool (K,), and once chosen ``best`` (the winner) and ``rivals`` (distractor
        settings -> distractor)."""
        key = ("scores", self.proposal, repr(self.scorer), self.shortlist,
               getattr(ctx.segmenter, "name", id(ctx.segmenter)))
        cache = ctx.extras.setdefault(key, {})
        if i not in cache:
            ev = self.evidence(ctx, i)
            upper = np.asarray(self.scorer.bound(ev), np.float64) if len(ev) else np.zeros(0)
            bound = upper
            if self.shortlist > 0 and len(ev) > self.shortlist:
                keep = np.zeros(len(ev), bool)
                keep[shortlist(ev, self.shortlist)] = True
                bound = np.where(keep, bound, -np.inf)
            cache[i] = {"ev": ev, "bound": bound, "upper": upper, "scores": np.full(len(ev), np.nan),
                        "scored": np.zeros(len(ev), bool), "rivals": {}}
        return cache[i]

    def _score(self, entry: dict, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        todo = idx[~entry["scored"][idx]]
        if len(todo):
            entry["scores"][todo] = self.scorer.score(entry["ev"], todo)
            entry["scored"][todo] = True
        return entry["scores"][idx]

    def score_regions(self, ctx: PromptContext, i: int) -> np.ndarray:
        """Every candidate region's score for image ``i``, (K,) (no pruning)."""
        entry = self._scores(ctx, i)
        with eval_mode(ctx.classifier):
            return self._score(entry, np.arange(len(entry["ev"]))).copy()

    def choose(self, ctx: PromptContext, i: int) -> int:
        """Index of the winning region of image ``i`` (-1 when there is no region): the
        per-image branch and bound (:func:`best_region`), or the choice already made for this
        image by this scorer (cached)."""
        entry = self._scores(ctx, i)
        if "best" not in entry:
            if not len(entry["ev"]):
                entry["best"] = -1
            else:
                entry["best"], _ = best_region(entry["bound"], lambda idx: self._score(entry, idx),
                                               entry["ev"].cam_mean())
        return entry["best"]

    def _rival_key(self) -> tuple[float, float]:
        return (self.distractor_max_score, self.distractor_ratio)

    def decide(self, ctx: PromptContext) -> list[tuple[int, int | None]]:
        """Each image's winning region and distractor: ``(best, rival)`` per image, ``best``
        -1 when the image has no region, ``rival`` None when there is none or
        ``n_background`` is 0. Made once per image, scorer and distractor setting (cached in
        ``ctx.extras``); batched over the images unless ``batched`` is False."""
        entries = [self._scores(ctx, i) for i in range(ctx.batch)]
        rival_key = self._rival_key()
        todo = [i for i, e in enumerate(entries)
                if "best" not in e or (self.n_background and e["best"] >= 0 and rival_key not in e["rivals"])]
        if todo and self.batched and hasattr(self.scorer, "classifier_features"):
            plans = {i: self._plan(entries[i]) for i in todo}
            self._drive(plans, ctx.classifier)
        else:
            for i in todo:
                best = self.choose(ctx, i)
                if self.n_background and best >= 0 and rival_key not in entries[i]["rivals"]:
                    entries[i]["rivals"][rival_key] = self._distractor(entries[i], best)
        return [(e["best"], e["rivals"].get(rival_key) if self.n_background and e["best"] >= 0 else None)
                for e in entries]

    def __call__(self, ctx: PromptContext) -> Prompts:
        if ctx.classifier is None or ctx.segmenter is None:
            raise ValueError("MaskScoring needs a classifier and a segmenter in the PromptContext")
        pts, labs, chosen = [], [], []
        with eval_mode(ctx.classifier):
            decisions = self.decide(ctx)
            for i, (best, rival) in enumerate(decisions):
                cam = ctx.cams[i]
                masks = self._scores(ctx, i)["ev"].regions.masks
                region = masks[best] if best >= 0 else strongest_region(cam, 0.5)
                p, lab = [deepest_point(region, cam)], [1]
                avoid = region.copy()
                if rival is not None:
                    p.append(deepest_point(masks[rival], cam))
                    lab.append(0)
                    avoid |= masks[rival]
                extra = background_points(cam, avoid, 1 + self.n_background - len(lab), self.low)
                p.extend(extra)
                lab.extend([0] * len(extra))
                pts.append(np.stack(p))
                labs.append(np.array(lab, np.int64))
                chosen.append(region)
        ctx.extras[self.name + "_regions"] = np.stack(chosen)
        return stack_prompts(pts, labs, self.name)

    def _distractor(self, entry: dict, best: int) -> int | None:
        """The rejected region with the highest mean CAM that does not overlap the winner
        and scores at most ``min(distractor_max_score, distractor_ratio * winner's score)``,
        or None. A region whose bound is already below that limit needs no scoring."""
        ev = entry["ev"]
        masks, bound = ev.regions.masks, entry["bound"]
        limit = min(self.distractor_max_score, self.distractor_ratio * float(self._score(entry, [best])[0]))
        for k in np.argsort(-ev.cam_mean(), kind="stable"):
            if k == best or (masks[k] & masks[best]).any():
                continue
            if bound[k] <= limit or float(self._score(entry, [k])[0]) <= limit:
                return int(k)
        return None

    # The batched search -----------------------------------------------------
    #
    # Each image's search is a generator (``_plan``): it yields the classifier runs it needs
    # next, a list of (evidence, run, regions), and ``_drive`` computes the runs of all waiting
    # images together (:func:`run_classifier`) before resuming them.

    def _drive(self, plans: dict[int, Generator], classifier: nn.Module) -> None:
        batch = self.forward_batch or (256 if model_device(classifier).type == "cuda" else 8)
        waiting: dict[int, list] = {}
        for i, plan in plans.items():
            request = next(plan, None)
            if request is not None:
                waiting[i] = request
        while waiting:
            run_classifier([r for requests in waiting.values() for r in requests], batch)
            current, waiting = waiting, {}
            for i in current:
                request = next(plans[i], None)
                if request is not None:
                    waiting[i] = request

    def _plan(self, entry: dict) -> Generator[list, None, None]:
        """One image's choice, then its distractor, into ``entry`` (``best``, ``rivals``)."""
        if "best" not in entry:
            entry["best"] = -1 if not len(entry["ev"]) else (yield from self._search(entry))
        rival_key = self._rival_key()
        if self.n_background and entry["best"] >= 0 and rival_key not in entry["rivals"]:
            entry["rivals"][rival_key] = yield from self._find_distractor(entry, entry["best"])

    def _bounds(self, entry: dict, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (k,) of the scores of regions ``idx`` from what is known:
        the exact score where scored."""
        idx = np.asarray(idx, np.int64)
        exact, known = entry["scores"][idx], entry["scored"][idx]
        if hasattr(self.scorer, "score_bounds"):
            lo, hi = (np.asarray(b, np.float64) for b in self.scorer.score_bounds(entry["ev"], idx))
        else:
            lo, hi = np.full(len(idx), -np.inf), entry["upper"][idx]
        return np.where(known, exact, lo), np.where(known, exact, hi)

    def _refine(self, entry: dict, k: int) -> list | None:
        """The next classifier run region ``k`` needs, as a request, or None after scoring it
        (when every feature the scorer reads is known)."""
        ev = entry["ev"]
        features = self.scorer.classifier_features
        for run in CLASSIFIER_RUN_KINDS:
            if any(CLASSIFIER_RUNS[f] == run for f in features) and ev.missing(run, [k]):
                return [(ev, run, [k])]
        self._score(entry, [k])
        return None

    def _settle(self, entry: dict, members: list[int]) -> Generator[list, None, float]:
        """The best score among ``members``, scoring only regions whose bound can still reach
        it, best bound first; afterwards every member not scored has an upper bound below it."""
        scores, scored = entry["scores"], entry["scored"]
        while True:
            done = scores[[j for j in members if scored[j]]]
            best = float(np.nanmax(done)) if len(done) and not np.isnan(done).all() else -np.inf
            open_ = [j for j in members if not scored[j]]
            if not open_:
                return best
            upper = self._bounds(entry, open_)[1]
            if not (upper >= best).any():
                return best
            k = open_[int(np.argmax(upper))]
            request = self._refine(entry, k)
            if request is not None:
                yield request

    def _search(self, entry: dict, chunk: int = 4) -> Generator[list, None, int]:
        """The region :func:`best_region` picks (``entry["bound"]``, the scores, CAM mean as
        tiebreak, chunks of ``chunk`` doubling), scoring fewer regions: the chunks are the same,
        so the regions in the running are too (regions outside the shortlist included, when a
        chunk reaches them), but within them only regions that can still win are scored."""
        bounds = entry["bound"]
        order = np.argsort(-bounds, kind="stable")
        members: list[int] = []
        k, best = 0, -np.inf
        while k < len(order):
            if bounds[order[k]] < best:
                break
            members.extend(int(j) for j in order[k:k + chunk])
            best = yield from self._settle(entry, members)
            k, chunk = k + chunk, chunk * 2
        # Ties: the higher CAM mean, then the later index (best_region's lexsort); a NaN score
        # counts as -inf there, so with no number at all every region ties.
        tie = entry["ev"].cam_mean()
        top = [j for j in members if entry["scores"][j] == best] or range(len(bounds))
        return max(top, key=lambda j: (tie[j], j))

    def _find_distractor(self, entry: dict, best: int) -> Generator[list, None, int | None]:
        """What :meth:`_distractor` returns, running the classifier only until a region's
        bounds settle whether it scores at most the limit."""
        ev = entry["ev"]
        masks, bound = ev.regions.masks, entry["bound"]
        while not entry["scored"][best]:  # the winner is scored, unless a caller chose without scoring
            request = self._refine(entry, best)
            if request is not None:
                yield request
        limit = min(self.distractor_max_score, self.distractor_ratio * float(entry["scores"][best]))
        for k in np.argsort(-ev.cam_mean(), kind="stable"):
            if k == best or (masks[k] & masks[best]).any():
                continue
            if bound[k] <= limit:
                return int(k)
            while not entry["scored"][k]:
                lo, hi = (float(b[0]) for b in self._bounds(entry, [int(k)]))
                if hi <= limit or lo > limit:
                    break
                request = self._refine(entry, int(k))
                if request is not None:
                    yield request
            if float(self._bounds(entry, [int(k)])[1][0]) <= limit:  # the score itself once scored
                return int(k)
        return None
