"""One image of any size and mode: camseg.pipelines.segment and camseg.data.io."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import red_and_blue_image
from PIL import Image

from camseg.data.dataset import normalize
from camseg.data.io import check_output_file, check_output_folder, load_image, save_mask, to_rgb
from camseg.evaluation.metrics import iou
from camseg.pipelines.segment import min_image_size, resize_rgb, scale_points, segment_image
from camseg.segmenters import get_segmenter


def _upscaled(factor: int) -> tuple[np.ndarray, np.ndarray]:
    image, red = red_and_blue_image()
    return (np.repeat(np.repeat(image, factor, 0), factor, 1), np.repeat(np.repeat(red, factor, 0), factor, 1))


@pytest.mark.parametrize("pipeline", ["foreground", "foreground_background"])
def test_an_upscaled_image_is_explained_small_and_segmented_at_its_own_size(redness_model, pipeline):
    big, red = _upscaled(10)  # 640 x 480
    res = segment_image(big, redness_model, [redness_model.detect], get_segmenter("regiongrow"), pipeline=pipeline)
    assert res.mask.shape == (480, 640) and res.image_size == (640, 480)
    assert res.classifier_size == (64, 48) and res.working_size == (640, 480)
    assert iou(res.mask, red) > 0.97
    fg = res.point_coords[res.point_labels == 1]
    assert red[np.rint(fg[:, 1]).astype(int), np.rint(fg[:, 0]).astype(int)].all()  # (x, y) in image pixels
    # the class and its probability are the classifier's at its own input size
    small = resize_rgb(big, (64, 48))
    with torch.no_grad():
        probs = torch.softmax(redness_model(normalize(small[None])), 1)[0]
    assert res.target == 0 == res.top_class
    assert res.probability == pytest.approx(float(probs[0]), abs=1e-6)
    assert any("64 x 48 (resized from 640 x 480)" in n for n in res.notes)


def test_an_offline_backend_works_at_a_bounded_size(redness_model):
    big, red = _upscaled(10)
    res = segment_image(big, redness_model, [redness_model.detect], get_segmenter("regiongrow"),
                        pipeline="foreground", working_side=256)
    assert res.working_size == (256, 192) and res.mask.shape == (480, 640)
    assert iou(res.mask, red) > 0.95
    assert any("segmented at 256 x 192" in n for n in res.notes)


def test_a_named_class_and_an_unsure_classifier(redness_model):
    image, _ = red_and_blue_image()
    res = segment_image(image, redness_model, [redness_model.detect], get_segmenter("regiongrow"),
                        pipeline="center", target="square")
    assert res.target == 1 and res.top_class == 0 and res.notes == ()
    grey = np.full((48, 64, 3), 120, np.uint8)  # nothing red: logits (0, 2, 0, 0, 0), p = 0.54 for class 1
    res = segment_image(grey, redness_model, [redness_model.detect], get_segmenter("regiongrow"), pipeline="center")
    assert res.top_class == 1 and res.top_probability == pytest.approx(np.exp(2) / (np.exp(2) + 4))
    assert not res.unsure
    tied = torch.nn.Linear(2, 5)
    with torch.no_grad():
        tied.weight.zero_()
        tied.bias.zero_()
    redness_model.fc = tied  # every class equally likely: p = 0.2
    res = segment_image(grey, redness_model, [redness_model.detect], get_segmenter("regiongrow"), pipeline="center")
    assert res.unsure and res.top_probability == pytest.approx(0.2)


def test_stretched_aspect_is_noted(redness_model):
    image = np.zeros((100, 100, 3), np.uint8)
    image[30:60, 30:60] = (230, 20, 20)
    res = segment_image(image, redness_model, [redness_model.detect], get_segmenter("regiongrow"),
                        pipeline="foreground")
    assert any("stretched" in n for n in res.notes)
    assert res.mask[30:60, 30:60].mean() > 0.95 and res.mask.sum() < 1.1 * 900


def test_too_small_images_are_refused_with_the_minimum(redness_model):
    assert min_image_size((64, 48)) == (16, 12)
    with pytest.raises(ValueError, match=r"15 x 12 pixels .* at least 16 x 12"):
        segment_image(np.zeros((12, 15, 3), np.uint8), redness_model, [redness_model.detect],
                      get_segmenter("regiongrow"))
    res = segment_image(np.zeros((12, 16, 3), np.uint8), redness_model, [redness_model.detect],
                        get_segmenter("regiongrow"), pipeline="center")
    assert res.mask.shape == (12, 16)


def test_scale_points_maps_pixel_centres():
    pts = np.array([[0.0, 0.0], [63.0, 47.0], [31.5, 23.5]])
    big = scale_points(pts, (64, 48), (640, 480))
    np.testing.assert_allclose(big, [[4.5, 4.5], [634.5, 474.5], [319.5, 239.5]])
    np.testing.assert_allclose(scale_points(big, (640, 480), (64, 48)), pts)
    np.testing.assert_allclose(scale_points(np.array([[0.0, 0.0]]), (64, 48), (16, 12)), [[0.0, 0.0]])  # clipped


# ------------------------------------------------------------------ image modes


def test_modes_convert_as_documented(tmp_path):
    grey = np.array([[0, 100, 255]], np.uint8)
    rgb, note = to_rgb(Image.fromarray(grey, "L"))
    assert rgb.tolist() == [[[0, 0, 0], [100, 100, 100], [255, 255, 255]]] and "8-bit greyscale" in note
    sixteen = np.array([[0, 257, 32896, 65535]], np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(sixteen).save(path)
    loaded = load_image(path)
    assert loaded.rgb[0, :, 0].tolist() == [0, 1, 128, 255] and "16-bit" in loaded.note
    assert (loaded.rgb[..., 0] == loaded.rgb[..., 2]).all()
    bits = Image.fromarray(np.array([[True, False]]))
    assert to_rgb(bits)[0][0, :, 0].tolist() == [255, 0]
    pal = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    assert to_rgb(pal)[0].tolist() == [[[10, 20, 30], [200, 100, 50]]]
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]]], np.uint8)
    out, note = to_rgb(Image.fromarray(rgba, "RGBA"))
    assert out.tolist() == [[[255, 255, 255], [255, 0, 0], [127, 127, 255]]] and "over white" in note
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA")
    assert to_rgb(la)[0].tolist() == [[[255, 255, 255], [0, 0, 0]]]
    pal.info["transparency"] = 0
    assert to_rgb(pal)[0].tolist() == [[[255, 255, 255], [200, 100, 50]]]
    assert to_rgb(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F"))[0][0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match=r"mode F.*\[0, 1\]"):
        to_rgb(Image.fromarray(np.array([[0.0, 3.0]], np.float32), "F"))
    cmyk = Image.new("CMYK", (2, 1), (0, 255, 255, 0))
    assert to_rgb(cmyk)[0].tolist() == [[[255, 0, 0], [255, 0, 0]]]


def test_exif_orientation_and_frames(tmp_path):
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :5] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(image).save(tmp_path / "r.png", exif=exif)
    loaded = load_image(tmp_path / "r.png")
    assert loaded.rgb.shape == (20, 10, 3) and "EXIF" in loaded.note
    frames = [Image.fromarray(np.full((4, 4, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    loaded = load_image(tmp_path / "a.gif")
    assert loaded.rgb.shape == (4, 4, 3) and "first of 2 frames" in loaded.note


def test_unreadable_and_huge_images(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image(tmp_path / "x.png")
    with pytest.raises(ValueError, match="is a folder"):
        load_image(tmp_path)
    Image.new("L", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"300 x 200 pixels; camseg reads at most 50,000"):
        load_image(tmp_path / "big.png", max_pixels=50_000)


def test_masks_are_written_losslessly(tmp_path):
    mask = np.zeros((12, 16), bool)
    mask[2:7, 3:9] = True
    for suffix in (".png", ".bmp", ".tif"):
        path = save_mask(mask, tmp_path / f"m{suffix}")
        assert (np.array(Image.open(path)) > 0).tolist() == mask.tolist()
        assert set(np.unique(np.array(Image.open(path))).tolist()) == {0, 255}
    with pytest.raises(ValueError, match="losslessly"):
        save_mask(mask, tmp_path / "m.jpg")


def test_output_paths_are_checked_before_work(tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(b"")
    masks = (".png", ".bmp")
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        check_output_file(tmp_path, "--out", masks)
    with pytest.raises(ValueError, match="is a folder"):
        check_output_file(f"{tmp_path}/new/", "--out", masks)
    with pytest.raises(ValueError, match="no file extension"):
        check_output_file(tmp_path / "mask", "--out", masks)
    with pytest.raises(ValueError, match=r"\.jpg is not supported.*lossless"):
        check_output_file(tmp_path / "mask.jpg", "--out", masks)
    with pytest.raises(ValueError, match="is the input file"):
        check_output_file(tmp_path / "." / "in.png", "--out", masks, inputs=[image])
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_file(image / "m.png", "--out", masks)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_folder(image, "--out")
    assert check_output_file(tmp_path / "new" / "deeper" / "m.png", "--out", masks).name == "m.png"
    assert not (tmp_path / "new").exists()  # checked, not created


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch):
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(ValueError, match=rf"cannot write in folder {tmp_path} \(permission denied\)"):
        check_output_file(tmp_path / "m.png", "--out", (".png",))
