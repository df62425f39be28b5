"""A chapter opened alone in "Colab": its .ipynb twin, executed with nbclient in an empty
folder outside the checkout.

* ``google.colab`` is faked by an injected first cell, so the chapter's hidden
  set-up cell installs camseg; ``$CAMSEG_INSTALL_SPEC`` points that install at
  a copy of this checkout (``pip install --no-deps --target SITE``; SITE is
  first on the kernel's path), and the test checks that the kernel imported
  camseg from there.
* ``SEGMENTER = "auto"`` must choose SAM because its checkpoint **can be
  downloaded**: a tiny SAM is registered as ``vit_b`` (its file's size and
  SHA-256 replace the official ones) and served by an HTTP server on
  127.0.0.1, so the reachability check, the download, the verification and
  the loading are the real code.
* CIFAR-10 comes from the offline copy (``../shared/data/cifar10``), else the
  fake copy of conftest; a tiny dataset and one training epoch
  (``$CAMSEG_SIZES``, ``$CAMSEG_EPOCHS``) keep it quick.

It passes when the notebook runs to the end, its output names the backend
(SAM) and why, and its figures exist.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("segment_anything")

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "intro.ipynb"  # it segments: SAM is downloaded and used

TINY_SAM = '''
import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer


def tiny_sam(checkpoint=None):
    """A random SAM with a 64 x 64 input, 1 ViT block and 32-d embeddings (the tests' tiny SAM)."""
    torch.manual_seed(0)
    dim, img = 32, 64
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=img, patch_size=16, embed_dim=dim, depth=1, num_heads=2,
                                      out_chans=dim, use_rel_pos=False, window_size=0),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(img // 16, img // 16),
                                     input_image_size=(img, img), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
                                 iou_head_depth=2, iou_head_hidden_dim=32),
    )
    if checkpoint is not None:
        sam.load_state_dict(torch.load(checkpoint, weights_only=True))
    return sam.eval()
'''

FAKE_COLAB = '''
import sys, types
google = types.ModuleType("google")
google.colab = types.ModuleType("google.colab")
sys.modules["google"], sys.modules["google.colab"] = google, google.colab
'''

REGISTER = '''
# Test scaffolding (not part of the chapter): the tiny SAM stands in for SAM vit_b.
import camseg, segment_anything
from camseg.segmenters import checkpoints
{tiny_sam}
segment_anything.sam_model_registry["vit_b"] = tiny_sam
checkpoints.SAM_CHECKPOINTS["vit_b"] = checkpoints.CheckpointSpec("vit_b", "sam_vit_b_01ec64.pth", {size},
                                                                  sha256="{sha256}")
print("camseg imported from", camseg.__file__)
'''


@pytest.fixture()
def sam_server(tmp_path_factory):
    """The tiny SAM's state dict, served over HTTP on 127.0.0.1 under the official file name."""
    import torch

    folder = tmp_path_factory.mktemp("server")
    namespace: dict = {}
    exec(TINY_SAM, namespace)  # noqa: S102 - our own source, shared with the kernel
    path = folder / "sam_vit_b_01ec64.pth"
    torch.save(namespace["tiny_sam"]().state_dict(), path)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield (f"http://127.0.0.1:{httpd.server_address[1]}/", path.stat().st_size,
               hashlib.sha256(path.read_bytes()).hexdigest(), httpd)
    finally:
        httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, fmt, *args):  # keep pytest's output clean; remember what was asked
        _QuietHandler.requests.append(f"{self.command} {self.path}")


def _cifar10(fake_cifar) -> tuple[Path, dict[str, int]]:
    from camseg.data.cifar import default_offline_locations

    for folder in default_offline_locations():
        if (folder / "train.tar").is_file():
            return folder, {"train": 20, "val": 6, "test": 4}
    return fake_cifar, {"train": 20, "val": 6, "test": 4}


def test_a_lone_chapter_runs_in_simulated_colab(tmp_path, sam_server, fake_cifar, monkeypatch):
    url, size, sha256, _ = sam_server
    work = tmp_path / "colab"  # an empty folder outside the checkout: the notebook and nothing else
    work.mkdir()
    assert ROOT not in work.parents
    shutil.copy(CHAPTER, work / CHAPTER.name)
    src, site = tmp_path / "src", tmp_path / "site"  # the "repository" pip installs, and where it goes
    shutil.copytree(ROOT / "camseg", src / "camseg", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    site.mkdir()
    cifar, sizes = _cifar10(fake_cifar)
    env = {
        "CAMSEG_INSTALL_SPEC": f"--no-deps --no-build-isolation --no-warn-conflicts --target {site} {src}",
        "PYTHONPATH": str(site),
        "CAMSEG_CACHE": str(tmp_path / "cache"),  # no SAM weights on this "machine"
        "CAMSEG_SAM_BASE_URL": url,
        "CAMSEG_CIFAR10": str(cifar),
        "CAMSEG_SIZES": ",".join(f"{k}={v}" for k, v in sizes.items()),
        "CAMSEG_EPOCHS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "OMP_NUM_THREADS": "1",  # measured: 7x quicker than 2 threads on a busy 2-core machine
        "CAMSEG_BUNDLE_URL": str(tmp_path / "no-bundle.tar.gz"),  # no published bundle: it computes, and says so
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("CAMSEG_WORKDIR", "CAMSEG_SAM_CHECKPOINT"):
        monkeypatch.delenv(key, raising=False)

    nb = nbformat.read(work / CHAPTER.name, as_version=4)
    assert nb.metadata["accelerator"] == "GPU" and nb.metadata["colab"]["gpuType"] == "T4"
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert "remove-cell" in nb.cells[setup].metadata.get("tags", [])
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(REGISTER.format(tiny_sam=TINY_SAM, size=size,
                                                                        sha256=sha256)))
    nb.cells.insert(0, nbformat.v4.new_code_cell(FAKE_COLAB))
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"the chapter failed in simulated Colab:\n{str(exc)[-3000:]}")
    seconds = time.perf_counter() - t0
    nbformat.write(nb, tmp_path / "executed.ipynb")

    def text(cell) -> str:
        return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")

    printed = "\n".join(text(c) for c in nb.cells if c.cell_type == "code")
    print(f"executed in {seconds:.0f} s; the notebook printed:\n{printed[-2500:]}")
    assert f"camseg imported from {site}" in printed  # the redirected install, not the checkout
    assert "segmenter: sam-vit_b (SAM vit_b weights are not cached but can be downloaded from " + url in printed
    assert (tmp_path / "cache" / "sam" / "sam_vit_b_01ec64.pth").stat().st_size == size  # downloaded, verified
    assert "HEAD /sam_vit_b_01ec64.pth" in _QuietHandler.requests and "GET /sam_vit_b_01ec64.pth" in \
        _QuietHandler.requests
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {})]
    glued = {k for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             for k in (o.get("metadata", {}).get("scrapbook") or {}).values() if isinstance(k, str)}
    assert figures or "fig_summary" in glued, "the chapter's figure is missing"
    evaluation = json.loads((work / "artifacts" / "eval" / "test-clean.json").read_text())
    assert evaluation["segmenter"] == "sam-vit_b" and evaluation["n_images"] == sizes["test"]
    assert "computing the results here instead" in "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert not (work / "artifacts" / "eval" / "cam-study.json").exists()  # it computed only what it shows
    assert not (work / "artifacts" / "shift").exists()


def test_install_spec_default_names_the_book_extra():
    """Outside the test the set-up cell installs camseg with the chapters' extra from the repository."""
    from packaging.requirements import Requirement

    source = next(c for c in json.loads(CHAPTER.read_text())["cells"] if c["cell_type"] == "code")["source"]
    default = "".join(source).split('os.environ.get("CAMSEG_INSTALL_SPEC", "')[1].split('"')[0]
    req = Requirement(default)
    assert req.name == "camseg" and req.extras == {"book"} and req.url.startswith("git+https://github.com/camseg/")
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("myst-nb") for r in extras["book"])
