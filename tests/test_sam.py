"""SAM backend: a tiny random SAM injected into SamSegmenter, and the checkpoint logic
against a local HTTP server on 127.0.0.1. No downloads, no real weights."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("segment_anything")

from segment_anything import SamPredictor  # noqa: E402
from segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from camseg.segmenters import SamSegmenter, get_segmenter  # noqa: E402
from camseg.segmenters.checkpoints import (  # noqa: E402
    CHECKPOINT_ENV_VAR,
    DEFAULT_BASE_URL,
    SAM_CHECKPOINTS,
    CheckpointError,
    CheckpointSpec,
    find_checkpoint,
    load_state_dict,
    resolve_checkpoint,
    verify_checkpoint,
)
from camseg.segmenters.sam import EmbeddingCache, load_sam  # noqa: E402

H, W = 24, 32  # images are H x W = 24 x 32; the tiny encoder's input is 64 x 64 (scale 2)


def tiny_sam(seed: int = 0) -> Sam:
    """A randomly initialised SAM: 64 x 64 input, 1 ViT block, 32-d embeddings."""
    torch.manual_seed(seed)
    dim, img = 32, 64
    return Sam(
        image_encoder=ImageEncoderViT(img_size=img, patch_size=16, embed_dim=dim, depth=1, num_heads=2,
                                      out_chans=dim, use_rel_pos=False, window_size=0),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(img // 16, img // 16),
                                     input_image_size=(img, img), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
                                 iou_head_depth=2, iou_head_hidden_dim=32),
    ).eval()


@pytest.fixture(scope="module")
def model() -> Sam:
    return tiny_sam()


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(3)]


class EncoderCounter:
    """Counts forward passes of the image encoder with a hook (independent of SamSegmenter's counter)."""

    def __init__(self, model: Sam) -> None:
        self.passes = 0
        self.images = 0
        self._handle = model.image_encoder.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        self.passes += 1
        self.images += inputs[0].shape[0]

    def remove(self) -> None:
        self._handle.remove()


@pytest.fixture()
def counter(model):
    c = EncoderCounter(model)
    yield c
    c.remove()


def one(x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    return np.array([[x, y]], dtype=np.float64), np.array([1], dtype=np.int64)


# --------------------------------------------------------------------------
# Predictions


def test_result_shape_dtype_and_name(model, images):
    seg = SamSegmenter(model=model)
    seg.set_image(images[0])
    res = seg.predict(*one(5.0, 7.0))
    assert res.mask.shape == (H, W) and res.mask.dtype == bool
    assert isinstance(res.score, float)
    assert res.backend == "sam" == seg.name
    assert SamSegmenter(model=model, name="sam-tiny").name == "sam-tiny"


def test_single_point_matches_sampredictor_best_of_three(model, images):
    seg = SamSegmenter(model=model)
    seg.set_image(images[1])
    coords, labels = one(20.0, 5.0)
    res = seg.predict(coords, labels)

    ref = SamPredictor(model)
    ref.set_image(images[1])
    masks, scores, _ = ref.predict(point_coords=coords, point_labels=labels, multimask_output=True)
    assert masks.shape == (3, H, W)
    best = int(np.argmax(scores))
    assert res.score == pytest.approx(float(scores.max()), abs=1e-5)
    np.testing.assert_array_equal(res.mask, masks[best])


def test_several_points_use_one_mask(model, images):
    seg = SamSegmenter(model=model)
    seg.set_image(images[0])
    coords = np.array([[3.0, 4.0], [25.0, 20.0], [10.0, 12.0]])
    labels = np.array([1, 1, 0])
    res = seg.predict(coords, labels)
    ref = SamPredictor(model)
    ref.set_image(images[0])
    masks, scores, _ = ref.predict(point_coords=coords, point_labels=labels, multimask_output=False)
    assert masks.shape == (1, H, W)
    np.testing.assert_array_equal(res.mask, masks[0])
    assert res.score == pytest.approx(float(scores[0]), abs=1e-5)


@pytest.mark.parametrize(("multimask", "n_points", "expected"), [
    ("auto", 1, True), ("auto", 2, False), (True, 2, True), (False, 1, False),
])
def test_multimask_option_reaches_the_decoder(model, images, multimask, n_points, expected):
    seen = []
    handle = model.mask_decoder.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["multimask_output"]), with_kwargs=True)
    try:
        seg = SamSegmenter(model=model, multimask=multimask)
        seg.set_image(images[0])
        seg.predict(np.array([[3.0, 4.0], [25.0, 20.0]])[:n_points], np.ones(n_points, dtype=np.int64))
    finally:
        handle.remove()
    assert seen == [expected]


def test_points_reach_sam_in_xy_order(model, images):
    """(x, y) goes to SAM unchanged (only rescaled to its 64 x 64 input: factor 2 here)."""
    seen = []
    handle = model.prompt_encoder.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["points"][0].detach().cpu().numpy().copy()), with_kwargs=True)
    try:
        seg = SamSegmenter(model=model)
        seg.set_image(images[0])
        seg.predict(*one(30.0, 5.0))
        seg.predict(*one(5.0, 20.0))
        seg.predict(*one(20.0, 5.0))  # the previous point with x and y swapped
    finally:
        handle.remove()
    np.testing.assert_allclose(seen[0][0, 0], [60.0, 10.0])
    np.testing.assert_allclose(seen[1][0, 0], [10.0, 40.0])
    np.testing.assert_allclose(seen[2][0, 0], [40.0, 10.0])
    assert not np.allclose(seen[1], seen[2])


def test_row_col_mixup_outside_the_image_is_caught(model, images):
    seg = SamSegmenter(model=model)
    seg.set_image(images[0])
    with pytest.raises(ValueError, match=r"outside the image.*\(row, col\)"):
        seg.predict(*one(5.0, 30.0))  # y = 30 > H - 1 = 23: a (row, col) given as (x, y)


def test_predict_before_set_image_and_bad_input(model, images):
    seg = SamSegmenter(model=model)
    with pytest.raises(RuntimeError, match="set_image"):
        seg.predict(*one(1.0, 1.0))
    with pytest.raises(ValueError, match="uint8"):
        seg.set_image(images[0].astype(np.float32))
    seg.set_image(images[0])
    with pytest.raises(ValueError, match="no foreground"):
        seg.predict(np.array([[1.0, 1.0]]), np.array([0]))


def test_bad_options(model):
    with pytest.raises(ValueError, match="multimask"):
        SamSegmenter(model=model, multimask="best")
    with pytest.raises(ValueError, match="model_id"):
        SamSegmenter(model=model, cache_dir="unused")
    with pytest.raises(ValueError, match="device"):
        SamSegmenter(model=model, device="meta")
    with pytest.raises(TypeError, match="Sam"):
        SamSegmenter(model=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="vit_x"):
        SamSegmenter("vit_x")


# --------------------------------------------------------------------------
# Embedding reuse


def test_encoder_runs_once_per_image_across_calls_and_pipelines(model, images, counter):
    seg = SamSegmenter(model=model)
    prompts_a = [one(5.0, 5.0), one(10.0, 12.0)]
    prompts_b = [(np.array([[3.0, 3.0], [30.0, 20.0]]), np.array([1, 0]))]
    for prompts in (prompts_a, prompts_b):  # two "pipelines" over the same images
        for image in images:
            seg.set_image(image)
            seg.set_image(image.copy())  # same content, another array
            for coords, labels in prompts:
                seg.predict(coords, labels)
    assert seg.encoder_calls == seg.images_encoded == len(images)
    assert counter.passes == counter.images == len(images)
    assert seg.cache.hits == 2 * 2 * len(images) - len(images)


def test_cached_set_image_gives_identical_results(model, images):
    seg = SamSegmenter(model=model)
    seg.set_image(images[0])
    first = seg.predict(*one(8.0, 9.0))
    seg.set_image(images[1])
    seg.set_image(images[0])
    again = seg.predict(*one(8.0, 9.0))
    np.testing.assert_array_equal(first.mask, again.mask)
    assert first.score == again.score


def test_lru_cache_is_bounded_and_evicts_least_recent(model, images, counter):
    a, b, c = images
    seg = SamSegmenter(model=model, cache_size=2)
    for image in (a, b, c):
        seg.set_image(image)
    assert seg.encoder_calls == 3 and len(seg.cache) == 2
    seg.set_image(c)  # still cached
    assert seg.encoder_calls == 3
    seg.set_image(a)  # evicted by c
    assert seg.encoder_calls == 4
    seg.set_image(c)
    seg.set_image(b)  # evicted by a
    assert seg.encoder_calls == 5
    assert len(seg.cache) == 2
    assert counter.passes == 5


def test_prepare_batches_and_equals_one_by_one(model, images, counter):
    batched = SamSegmenter(model=model, batch_size=2)
    assert batched.prepare(images + [images[0].copy()]) == 3  # a repeated image is encoded once
    assert batched.encoder_calls == 2 and batched.images_encoded == 3  # batches of 2 + 1
    assert counter.images == 3
    for image in images:
        batched.set_image(image)
    assert batched.encoder_calls == 2
    assert batched.prepare(images) == 0

    single = SamSegmenter(model=model)
    for image in images:
        single.set_image(image)
    assert single.encoder_calls == 3
    for image in images:
        x, y = batched.embedding(image), single.embedding(image)
        assert x.shape == (1, 32, 4, 4) and x.dtype == torch.float32
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def test_prepare_accepts_an_array_and_mixed_sizes(model, images):
    seg = SamSegmenter(model=model, batch_size=8)
    other = np.zeros((40, 16, 3), np.uint8)
    assert seg.prepare(np.stack(images[:2])) == 2
    assert seg.prepare([other]) == 1
    seg.set_image(other)
    assert seg.predict(*one(15.0, 39.0)).mask.shape == (40, 16)
    assert seg.encoder_calls == 2
    with pytest.raises(ValueError, match=r"images\[1\]"):
        seg.prepare([images[0], images[0][..., 0]])


def test_embedding_matches_sampredictor(model, images):
    seg = SamSegmenter(model=model)
    ref = SamPredictor(model)
    ref.set_image(images[2])
    torch.testing.assert_close(seg.embedding(images[2]), ref.get_image_embedding().cpu(), rtol=1e-5, atol=1e-6)


def test_disk_cache_survives_a_new_segmenter(model, images, tmp_path):
    first = SamSegmenter(model=model, cache_dir=tmp_path, model_id="tiny")
    first.set_image(images[0])
    files = sorted(p.name for p in (tmp_path / "tiny").iterdir())
    assert len(files) == 1 and files[0].endswith(".pt")  # no temporary file left
    second = SamSegmenter(model=model, cache_dir=tmp_path, model_id="tiny")
    second.set_image(images[0])
    assert second.encoder_calls == 0 and second.cache.disk_hits == 1
    torch.testing.assert_close(first.embedding(images[0]), second.embedding(images[0]))
    other_model = SamSegmenter(model=model, cache_dir=tmp_path, model_id="tiny-v2")
    other_model.set_image(images[0])
    assert other_model.encoder_calls == 1  # never shares another model's files


def test_embedding_cache_rejects_zero_entries():
    with pytest.raises(ValueError, match="max_entries"):
        EmbeddingCache(0)


# --------------------------------------------------------------------------
# Checkpoints: facts, resolution, download and verification


def test_official_checkpoint_facts(monkeypatch):
    monkeypatch.delenv("CAMSEG_SAM_BASE_URL")  # set to a closed local port for every test (conftest)
    assert set(SAM_CHECKPOINTS) == {"vit_b", "vit_l", "vit_h"}
    assert [SAM_CHECKPOINTS[t].url() for t in ("vit_b", "vit_l", "vit_h")] == [
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
    ]
    for spec in SAM_CHECKPOINTS.values():
        tag = spec.filename.removesuffix(".pth").rsplit("_", 1)[1]
        assert spec.md5.startswith(tag)  # the hex in the file name is the MD5 prefix
        assert len(spec.sha256) == 64 and len(spec.md5) == 32
    assert SAM_CHECKPOINTS["vit_b"].size == 375_042_383


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    lie_about_length: set[str] = set()
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        type(self).requests.append(self.path)
        name = self.path.lstrip("/")
        data = self.files.get(name)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        if name in self.lie_about_length:  # announce twice the bytes, send half, close
            self.send_header("Content-Length", str(2 * len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server():
    """A local HTTP server on 127.0.0.1 serving ``server.files`` (name -> bytes)."""
    handler = type("Handler", (_Handler,), {"files": {}, "lie_about_length": set(), "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.files = handler.files
    httpd.lie_about_length = handler.lie_about_length
    httpd.requests = handler.requests
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def fake_checkpoint(model) -> bytes:
    """A small but real checkpoint: the tiny model's state dict."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def spec_for(data: bytes, filename: str = "sam_tiny_abc123.pth") -> CheckpointSpec:
    return CheckpointSpec("vit_b", filename, len(data), sha256=hashlib.sha256(data).hexdigest(),
                          md5=hashlib.md5(data).hexdigest()[:6])


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_verifies_and_renames(server, fake_checkpoint, tmp_path, model):
    spec = spec_for(fake_checkpoint)
    server.files[spec.filename] = fake_checkpoint
    folder = tmp_path / "sam"
    path = resolve_checkpoint(spec=spec, folder=folder, base_url=server.base_url, progress=False)
    assert path == folder / spec.filename
    assert path.read_bytes() == fake_checkpoint
    assert [p.name for p in folder.iterdir()] == [spec.filename]  # no temporary file left
    assert server.requests == [f"/{spec.filename}"]
    # found in the cache the second time: no new request
    assert resolve_checkpoint(spec=spec, folder=folder, base_url=server.base_url, progress=False) == path
    assert len(server.requests) == 1
    # and it loads back into the architecture it came from
    fresh = tiny_sam(seed=1)
    fresh.load_state_dict(load_state_dict(path))
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


@pytest.mark.parametrize("corruption", ["truncated", "short-read", "wrong-hash"])
def test_corrupt_download_is_refused_and_removed(server, fake_checkpoint, tmp_path, corruption):
    spec = spec_for(fake_checkpoint)
    if corruption == "truncated":  # the server sends (and announces) fewer bytes
        server.files[spec.filename] = fake_checkpoint[:-100]
        message = "bytes"
    elif corruption == "short-read":  # the connection drops before the announced length
        server.files[spec.filename] = fake_checkpoint
        server.lie_about_length.add(spec.filename)
        message = "could not be downloaded|bytes"
    else:  # right size, wrong content
        server.files[spec.filename] = fake_checkpoint[:-1] + bytes([fake_checkpoint[-1] ^ 0xFF])
        message = "SHA-256"
    folder = tmp_path / "sam"
    with pytest.raises(CheckpointError, match=message):
        resolve_checkpoint(spec=spec, folder=folder, base_url=server.base_url, progress=False)
    assert not (folder / spec.filename).exists()
    assert list(folder.iterdir()) == []  # nothing half-written left anywhere
    assert find_checkpoint(spec=spec, folder=folder) is None


def test_offline_error_names_file_url_and_remedies(tmp_path, monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV_VAR, raising=False)
    spec = SAM_CHECKPOINTS["vit_b"]
    url = closed_port_url()
    folder = tmp_path / "sam"
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint("vit_b", folder=folder, base_url=url, progress=False, timeout=5)
    text = str(info.value)
    for needle in (spec.filename, url + spec.filename, CHECKPOINT_ENV_VAR, "checkpoint=PATH",
                   str(folder / spec.filename)):
        assert needle in text
    assert not any(folder.iterdir())


def test_no_download_when_disabled(tmp_path, monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV_VAR, raising=False)
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="downloading is off.*sam_vit_l_0b3195.pth"):
        resolve_checkpoint("vit_l", download=False)
    with pytest.raises(CheckpointError, match="sam_vit_b_01ec64.pth"):
        SamSegmenter("vit_b", download=False)


def _sparse(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)  # a sparse file: the official size without the disk space
    return path


def test_resolution_order_path_env_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(CHECKPOINT_ENV_VAR, raising=False)
    spec = SAM_CHECKPOINTS["vit_b"]
    assert find_checkpoint("vit_b") is None
    cached = _sparse(tmp_path / "cache" / "sam" / spec.filename, spec.size)
    assert find_checkpoint("vit_b") == cached
    assert resolve_checkpoint("vit_b", download=False) == cached
    env_file = tmp_path / "my_sam.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(env_file))
    assert resolve_checkpoint("vit_b", download=False) == env_file
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"y")
    assert resolve_checkpoint("vit_b", explicit, download=False) == explicit
    assert find_checkpoint("vit_b", explicit) == explicit
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint("vit_b", tmp_path / "missing.pth", download=False)
    # an env var naming another model type's official file does not apply to vit_b
    monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(_sparse(tmp_path / SAM_CHECKPOINTS["vit_l"].filename, 10)))
    assert find_checkpoint("vit_b") == cached


def test_cached_file_of_wrong_size_is_moved_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path))
    monkeypatch.delenv(CHECKPOINT_ENV_VAR, raising=False)
    spec = SAM_CHECKPOINTS["vit_b"]
    bad = _sparse(tmp_path / "sam" / spec.filename, spec.size - 1)
    assert find_checkpoint("vit_b") is None
    with pytest.warns(RuntimeWarning, match="wrong size"), \
            pytest.raises(CheckpointError, match="could not be downloaded"):
        resolve_checkpoint("vit_b", base_url=closed_port_url(), progress=False, timeout=5)
    assert not bad.exists()
    assert (tmp_path / "sam" / (spec.filename + ".corrupt")).exists()


def test_unloadable_cached_checkpoint_is_refused_and_moved_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path))
    path = tmp_path / "sam" / "sam_vit_b_01ec64.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="(?s)cannot load.*moved"):
        load_sam("vit_b", path, device="cpu")
    assert not path.exists() and path.with_name(path.name + ".corrupt").exists()
    elsewhere = tmp_path / "mine.pth"
    elsewhere.write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_sam("vit_b", elsewhere, device="cpu")
    assert elsewhere.exists()  # a user's own file is never moved
    other_type = tmp_path / "sam" / "sam_vit_l_0b3195.pth"
    other_type.write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_sam("vit_b", other_type, device="cpu")  # wrong type asked for: not vit_b's cache file
    assert other_type.exists()


def test_verify_checkpoint(tmp_path, fake_checkpoint):
    path = tmp_path / "f.pth"
    path.write_bytes(fake_checkpoint)
    verify_checkpoint(path, spec_for(fake_checkpoint))
    with pytest.raises(CheckpointError, match="MD5"):
        verify_checkpoint(path, CheckpointSpec("vit_b", "f.pth", len(fake_checkpoint), md5="ffffff"))
    with pytest.raises(CheckpointError, match="bytes"):
        verify_checkpoint(path, CheckpointSpec("vit_b", "f.pth", len(fake_checkpoint) + 1))
    verify_checkpoint(path, CheckpointSpec("vit_b", "f.pth", len(fake_checkpoint), sha256="00"), full=False)


def test_default_base_url_is_official(monkeypatch):
    assert DEFAULT_BASE_URL == "https://dl.fbaipublicfiles.com/segment_anything/"
    assert SAM_CHECKPOINTS["vit_h"].url("http://mirror/x/") == "http://mirror/x/sam_vit_h_4b8939.pth"
    monkeypatch.setenv("CAMSEG_SAM_BASE_URL", "http://mirror/y/")
    assert SAM_CHECKPOINTS["vit_b"].url() == "http://mirror/y/sam_vit_b_01ec64.pth"  # $CAMSEG_SAM_BASE_URL
    assert SAM_CHECKPOINTS["vit_b"].url("http://mirror/x/") == "http://mirror/x/sam_vit_b_01ec64.pth"  # argument wins


# --------------------------------------------------------------------------
# Registry with SAM


def test_auto_picks_sam_with_an_injected_model(model):
    seg = get_segmenter("auto", model=model)
    assert isinstance(seg, SamSegmenter) and seg.name == "sam"


def test_sam_registry_names_build_sam(monkeypatch):
    from camseg import segmenters

    made = []
    for name in ("sam", "sam-vit_b", "sam-vit_l", "sam-vit_h"):
        factory = segmenters.SEGMENTERS[name]
        assert isinstance(factory, partial) and factory.func is SamSegmenter
        made.append(factory.args[0])
    assert made == ["vit_b", "vit_b", "vit_l", "vit_h"]


# --------------------------------------------------------------------------
# Real weights (deselected by default: run with -m slow where a checkpoint is available)


@pytest.mark.slow
def test_real_vit_b_segments_a_flat_square():
    if find_checkpoint("vit_b") is None:
        pytest.skip("no SAM vit_b checkpoint on this machine (argument, $CAMSEG_SAM_CHECKPOINT or cache)")
    image = np.full((48, 64, 3), (40, 90, 160), np.uint8)
    image[10:30, 20:40] = (220, 40, 40)
    seg = get_segmenter("sam-vit_b", download=False)
    seg.set_image(image)
    res = seg.predict(np.array([[30.0, 20.0]]), np.array([1]))
    truth = np.zeros((48, 64), bool)
    truth[10:30, 20:40] = True
    assert res.backend == "sam-vit_b"
    assert (res.mask & truth).sum() / (res.mask | truth).sum() > 0.9


# --------------------------------------------------------------------------
# Batched prompts


def _random_prompts(rng, k: int, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.stack([rng.uniform(0, w - 1, (k, n)), rng.uniform(0, h - 1, (k, n))], -1)
    labels = np.ones((k, n), np.int64)
    labels[:, 1:] = rng.integers(0, 2, (k, n - 1))
    return coords, labels


@pytest.mark.parametrize("shape", [(H, W), (W, H), (17, 17)])
@pytest.mark.parametrize("n_points", [1, 3])
def test_predict_batch_equals_single_calls_and_sampredictor(model, shape, n_points):
    """One decoder pass over K prompts gives the masks of K single calls, which equal
    SamPredictor's (its 1024 x 1024 resize replaced by the equivalent per-axis matrices)."""
    rng = np.random.default_rng(n_points)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    coords, labels = _random_prompts(rng, 24, n_points, *shape)
    batched = SamSegmenter(model=model, batch_prompts=True)
    batched.set_image(image)
    out = batched.predict_batch(coords, labels)
    looped = SamSegmenter(model=model, batch_prompts=False)
    looped.set_image(image)
    singles = [looped.predict(c, lab) for c, lab in zip(coords, labels)]
    assert looped.predict_batch(coords, labels)[5].mask.tolist() == singles[5].mask.tolist()
    ref = SamPredictor(model)
    ref.set_image(image)
    assert len(out) == 24
    for res, single, c, lab in zip(out, singles, coords, labels):
        np.testing.assert_array_equal(res.mask, single.mask)
        assert res.score == pytest.approx(single.score, abs=1e-5) and res.backend == "sam"
        masks, scores, _ = ref.predict(point_coords=c, point_labels=lab, multimask_output=n_points == 1)
        np.testing.assert_array_equal(single.mask, masks[int(np.argmax(scores))])
    assert sum(int(r.mask.sum()) for r in out) > 0  # not a trivially empty comparison


def test_predict_batch_calls_the_decoder_once(model, images):
    calls = []
    handle = model.mask_decoder.register_forward_hook(lambda m, i, o: calls.append(o[0].shape[0]))
    try:
        seg = SamSegmenter(model=model, batch_prompts=True)
        seg.set_image(images[0])
        seg.predict_batch(*_random_prompts(np.random.default_rng(0), 7, 1, H, W))
        seg = SamSegmenter(model=model, batch_prompts=False)
        seg.set_image(images[0])
        seg.predict_batch(*_random_prompts(np.random.default_rng(0), 3, 1, H, W))
    finally:
        handle.remove()
    assert calls == [7, 1, 1, 1]


def test_predict_batch_bad_input_names_the_prompt(model, images):
    seg = SamSegmenter(model=model)
    with pytest.raises(RuntimeError, match="set_image"):
        seg.predict_batch(np.zeros((1, 1, 2)), np.ones((1, 1), np.int64))
    seg.set_image(images[0])
    with pytest.raises(ValueError, match=r"shape \(K, n, 2\)"):
        seg.predict_batch(np.zeros((2, 2)), np.ones((2, 1), np.int64))
    with pytest.raises(ValueError, match=r"\(K, n\) = \(2, 1\)"):
        seg.predict_batch(np.zeros((2, 1, 2)), np.ones((2,), np.int64))
    with pytest.raises(ValueError, match="prompt 1: .*no foreground point"):
        seg.predict_batch(np.zeros((2, 1, 2)), np.array([[1], [0]]))
    assert seg.predict_batch(np.zeros((0, 1, 2)), np.ones((0, 1), np.int64)) == []


def test_precision_and_batching_options(model):
    seg = SamSegmenter(model=model)
    assert seg.encoder_dtype is None and seg.batch_prompts is False  # the CPU: fp32, one prompt per pass
    with pytest.raises(ValueError, match="precision='fp16' needs CUDA"):
        SamSegmenter(model=model, precision="fp16")
    with pytest.raises(ValueError, match="precision must be"):
        SamSegmenter(model=model, precision="half")
    with pytest.raises(ValueError, match="batch_prompts must be"):
        SamSegmenter(model=model, batch_prompts="yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_encoder_masks_match_fp32_on_cuda(precision, images):
    cuda_model = tiny_sam().cuda()
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    coords, labels = _random_prompts(np.random.default_rng(0), 32, 1, H, W)
    masks = {}
    for p in ("fp32", precision):
        seg = SamSegmenter(model=cuda_model, precision=p)
        seg.set_image(images[0])
        masks[p] = np.stack([r.mask for r in seg.predict_batch(coords, labels)])
    agree = (masks["fp32"] == masks[precision]).mean()
    assert agree > 0.99, agree
