"""Property-based tests (hypothesis): random sizes, dtypes, point sets and masks.

Every call either gives a correct result (checked against a property or an
independent reference computation) or raises ``ValueError``/``TypeError``
from camseg's own checks, never an error from deeper down (numpy, OpenCV,
scikit-image, torch) and never a silently wrong answer. Kept to a few
seconds: few examples, small images.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from camseg.evaluation.metrics import iou, iou_per_image, point_metrics
from camseg.prompting.prompts import CamArgmax, CamCentroid, CamInterior, CenterPoint, PromptContext, oracle_points
from camseg.segmenters import get_segmenter

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])

DTYPES = [np.uint8, np.uint16, np.int16, np.int64, np.float32, np.float64, np.bool_]


def camseg_call(call):
    """``(result, None)`` or ``(None, error)`` for a ValueError/TypeError raised by camseg's code.

    Any other exception propagates (the test fails); a ValueError/TypeError raised
    outside camseg fails the test with where it came from.
    """
    try:
        return call(), None
    except (ValueError, TypeError) as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        assert "camseg" in Path(frame.filename).parts, \
            f"{type(exc).__name__} raised in {frame.filename}:{frame.lineno}, not by camseg: {exc}"
        return None, exc


@st.composite
def arrays(draw, shape, dtypes=DTYPES, binary=False):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == np.bool_ or binary:
        values = rng.random(shape) < draw(st.floats(0, 1))
        if not binary or dtype == np.bool_:
            return values.astype(dtype)
        if draw(st.booleans()):  # sometimes a value other than 0/1
            values = values.astype(np.int64) * draw(st.sampled_from([1, 2, 255, -1]))
        return values.astype(dtype)
    if dtype.kind == "f":
        values = rng.random(shape) * draw(st.sampled_from([1.0, 255.0]))
        if draw(st.integers(0, 9)) == 0:
            values.flat[0] = draw(st.sampled_from([np.nan, np.inf]))
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -300), min(info.max, 70000), shape, endpoint=True).astype(dtype)


sizes = st.tuples(st.integers(1, 20), st.integers(1, 20))


@st.composite
def image_arrays(draw):
    h, w = draw(sizes)
    shape = draw(st.sampled_from([(h, w, 3), (h, w, 3), (h, w), (h, w, 4), (3, h, w), (h, w, 1), (h,)]))
    return draw(arrays(shape))


@st.composite
def prompts_for(draw, h, w, valid=False):
    n = draw(st.integers(1 if valid else 0, 4))
    if valid:
        xs = draw(st.lists(st.floats(0, w - 1), min_size=n, max_size=n))
        ys = draw(st.lists(st.floats(0, h - 1), min_size=n, max_size=n))
        labels = draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
        labels[draw(st.integers(0, n - 1))] = 1
        return np.array(list(zip(xs, ys, strict=True)), np.float64).reshape(n, 2), np.array(labels, np.int64)
    span = st.one_of(st.floats(-3, max(h, w) + 3), st.sampled_from([np.nan, np.inf, -np.inf]))
    shape = draw(st.sampled_from([(n, 2), (n, 2), (n, 2), (n, 3), (n,), (1, n, 2)]))
    coords = np.array(draw(st.lists(span, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape)
    lab_dtype = draw(st.sampled_from([np.int64, np.int32, np.uint8, np.float32, np.bool_]))
    n_labels = draw(st.sampled_from([n, n, n + 1]))
    labels = np.array(draw(st.lists(st.sampled_from([-1, 0, 1, 1, 2]), min_size=n_labels, max_size=n_labels)))
    return coords, labels.astype(lab_dtype)


SEGMENTERS = ["regiongrow", "floodfill", "grabcut", "randomwalker"]


@pytest.mark.parametrize("name", SEGMENTERS)
@FAST
@given(image=image_arrays(), data=st.data())
def test_segmenter_any_input(name, image, data):
    seg = get_segmenter(name)
    _, err = camseg_call(lambda: seg.set_image(image))
    if err is not None:
        assert not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3)
        return
    assert image.dtype == np.uint8 and image.shape[2] == 3
    h, w = image.shape[:2]
    coords, labels = data.draw(prompts_for(h, w))
    res, err = camseg_call(lambda: seg.predict(coords, labels))
    if err is None:
        _check_mask(res.mask, (h, w), np.asarray(coords, np.float64), np.asarray(labels).astype(np.int64))


@pytest.mark.parametrize("name", SEGMENTERS)
@FAST
@given(data=st.data())
def test_segmenter_valid_input_always_works(name, data):
    h, w = data.draw(sizes)
    image = data.draw(arrays((h, w, 3), dtypes=[np.uint8]))
    coords, labels = data.draw(prompts_for(h, w, valid=True))
    seg = get_segmenter(name)
    seg.set_image(image)
    res = seg.predict(coords, labels)
    _check_mask(res.mask, (h, w), coords, labels)
    assert np.isfinite(res.score)


def _check_mask(mask, shape, coords, labels):
    assert mask.shape == shape and mask.dtype == bool
    rows, cols = np.rint(coords[:, 1]).astype(int), np.rint(coords[:, 0]).astype(int)
    bg = labels == 0
    assert not mask[rows[bg], cols[bg]].any(), "a background point lies in the mask"
    bg_pixels = set(zip(rows[bg].tolist(), cols[bg].tolist(), strict=True))
    for r, c in zip(rows[~bg].tolist(), cols[~bg].tolist(), strict=True):
        assert mask[r, c] or (r, c) in bg_pixels, "a foreground point's pixel is not in the mask"


@FAST
@given(data=st.data())
def test_iou_any_masks(data):
    h, w = data.draw(sizes)
    a = data.draw(arrays(data.draw(st.sampled_from([(h, w), (h, w), (h, w + 1), (1, h, w)])), binary=True))
    b = data.draw(arrays((h, w), binary=True))
    value, err = camseg_call(lambda: iou(a, b))
    if err is None:
        ra, rb = a.astype(bool), b.astype(bool)
        union = (ra | rb).sum()
        assert value == (1.0 if union == 0 else (ra & rb).sum() / union)
        assert 0.0 <= value <= 1.0
        per = iou_per_image(a[None], b[None])
        assert per.shape == (1,) and per[0] == value
    else:
        assert a.shape != b.shape or not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all())


@FAST
@given(data=st.data())
def test_point_metrics_any_points(data):
    h, w = data.draw(sizes)
    batch = data.draw(st.integers(1, 3))
    gts = data.draw(arrays((batch, h, w), dtypes=[np.bool_, np.uint8], binary=True))
    sets = [data.draw(prompts_for(h, w)) for _ in range(batch)]
    n = max(len(np.atleast_1d(lab)) for _, lab in sets)
    coords = np.zeros((batch, n, 2))
    labels = np.full((batch, n), -1)
    for i, (c, lab) in enumerate(sets):
        flat = np.asarray(c, np.float64).reshape(-1)
        k = min(len(lab), n, flat.size // 2)
        coords[i, :k] = flat[: 2 * k].reshape(k, 2)
        labels[i, :k] = np.asarray(lab)[:k].astype(np.int64)
    res, err = camseg_call(lambda: point_metrics(coords, labels, gts))
    if err is not None:
        return
    masks = gts.astype(bool)
    for kind, rate, count in ((1, res.fg_hit_rate, res.n_fg), (0, res.bg_hit_rate, res.n_bg)):
        hits = []
        for i in range(batch):
            for (x, y), lab in zip(coords[i], labels[i], strict=True):
                if lab == kind:
                    hits.append(masks[i, int(np.round(y)), int(np.round(x))])
        assert count == len(hits)
        assert (rate is None) == (len(hits) == 0)
        if hits:
            assert rate == pytest.approx(np.mean(hits))


@st.composite
def contexts(draw):
    h, w = draw(sizes)
    batch = draw(st.integers(1, 3))
    cams = draw(arrays(draw(st.sampled_from([(batch, h, w), (batch, h, w), (h, w), (batch, h, w, 1)])),
                       dtypes=[np.float32, np.float64, np.uint8]))
    images = np.zeros((batch, h, w, 3), np.uint8)
    return PromptContext(images=images, normalized=torch.zeros(batch, 3, h, w), cams=cams,
                         targets=np.zeros(batch, np.int64))


STRATEGIES = [CenterPoint(), CamArgmax(), CamArgmax(with_background=True), CamCentroid(), CamInterior(),
              CamInterior(n_background=2)]


@FAST
@given(make=st.data(), which=st.integers(0, len(STRATEGIES) - 1))
def test_prompt_strategies_any_cam(make, which):
    ctx, err = camseg_call(lambda: make.draw(contexts()))
    if err is not None:
        return
    cams = np.asarray(ctx.cams)
    assert cams.ndim == 3 and np.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    prompts = STRATEGIES[which](ctx)
    b, h, w = cams.shape
    assert prompts.point_coords.shape[0] == b
    for i in range(b):
        pts, labels = prompts.for_image(i)
        assert len(pts) >= 1 and labels[0] == 1 and set(labels.tolist()) <= {0, 1}
        assert np.isfinite(pts).all()
        assert (pts[:, 0] >= 0).all() and (pts[:, 0] <= w - 1).all()
        assert (pts[:, 1] >= 0).all() and (pts[:, 1] <= h - 1).all()


@FAST
@given(data=st.data())
def test_oracle_points_any_masks(data):
    h, w = data.draw(sizes)
    shape = data.draw(st.sampled_from([(2, h, w), (2, h, w), (h, w)]))
    gts = data.draw(arrays(shape, binary=True))
    prompts, err = camseg_call(lambda: oracle_points(gts))
    if err is not None:
        return
    masks = gts.astype(bool)
    assert masks.ndim == 3 and masks.any(axis=(1, 2)).all()
    for i, m in enumerate(masks):
        (x, y), = prompts.for_image(i)[0]
        assert m[int(y), int(x)]  # on the object
