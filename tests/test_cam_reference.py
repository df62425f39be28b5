"""camseg's GradCAM / GradCAMPlusPlus against the grad-cam package (pytorch-grad-cam).

Conventions aligned inside these tests (the product follows the Grad-CAM contract, book: Reference › API contracts):

* Rescaling: pytorch-grad-cam rescales each layer's map min..max (as
  ``(x - min) / (1e-7 + max)``) *before* resizing it to the input size, and
  rescales the mean over layers once more. camseg's contract resizes first, then
  rescales exactly (``(x - min) / (max - min)``, zeros for a constant map),
  and averages the rescaled layer maps without a second rescale. The reference's
  ``scale_cam_image`` and ``aggregate_multi_layers`` are replaced here by
  versions that follow that contract, written independently of camseg's code (resize
  with cv2 bilinear, as the reference does).
* Grad-CAM++: the reference adds eps = 1e-6 to the alpha denominator; camseg's
  default is an exact safe division, so camseg is run with ``eps=1e-6``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("pytorch_grad_cam")
import pytorch_grad_cam.base_cam as ref_base  # noqa: E402
from conftest import assert_valid_cam  # noqa: E402
from pytorch_grad_cam import GradCAM as RefGradCAM  # noqa: E402
from pytorch_grad_cam import GradCAMPlusPlus as RefGradCAMPlusPlus  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

from camseg.models.cam import GradCAM, GradCAMPlusPlus  # noqa: E402


def _spec_scale(cam: np.ndarray, target_size=None) -> np.ndarray:
    out = []
    for img in cam:
        img = np.float32(img)
        if target_size is not None:
            img = cv2.resize(img, target_size, interpolation=cv2.INTER_LINEAR)
        lo, hi = float(img.min()), float(img.max())
        out.append((img - lo) / (hi - lo) if hi - lo > 1e-6 * max(abs(hi), abs(lo)) else np.zeros_like(img))
    return np.float32(out)


@pytest.fixture()
def aligned_reference(monkeypatch):
    monkeypatch.setattr(ref_base, "scale_cam_image", _spec_scale)
    monkeypatch.setattr(ref_base.BaseCAM, "aggregate_multi_layers",
                        lambda self, cams: np.mean(np.concatenate(cams, axis=1), axis=1))


LAYERS = {
    "layer2": lambda m: [m.layer2[-1]],
    "layer3": lambda m: [m.layer3[-1]],
    "layer2+layer3": lambda m: [m.layer2[-1], m.layer3[-1]],
}
METHODS = [(GradCAM, RefGradCAM, {}), (GradCAMPlusPlus, RefGradCAMPlusPlus, {"eps": 1e-6})]


@pytest.mark.parametrize("layers", sorted(LAYERS))
@pytest.mark.parametrize("use_targets", [True, False], ids=["targets", "top-class"])
@pytest.mark.parametrize("ours_cls,ref_cls,kwargs", METHODS, ids=["gradcam", "gradcam++"])
def test_matches_pytorch_grad_cam(resnet18_model, image_batch, aligned_reference, layers, use_targets,
                                  ours_cls, ref_cls, kwargs):
    model = resnet18_model
    target_layers = LAYERS[layers](model)
    targets = [0, 3, 1, 4] if use_targets else None
    ours = ours_cls(model, target_layers, **kwargs)(image_batch, targets)
    ref_targets = None if targets is None else [ClassifierOutputTarget(t) for t in targets]
    with ref_cls(model=model, target_layers=target_layers) as ref:
        expected = ref(input_tensor=image_batch, targets=ref_targets)
    model.zero_grad(set_to_none=True)  # the reference fills .grad
    assert_valid_cam(ours, 4, 48, 64)
    assert expected.shape == ours.shape
    assert ours.max() > 0.3  # the maps have content: not a zeros-vs-zeros comparison
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


def test_top_class_equals_explicit_argmax(resnet18_model, image_batch):
    model = resnet18_model
    top = model(image_batch).argmax(1).tolist()
    cam = GradCAM(model, [model.layer3[-1]])
    np.testing.assert_array_equal(cam(image_batch), cam(image_batch, top))
