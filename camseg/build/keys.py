"""What a cached artefact is keyed on: camseg's version with a digest of its source, file
digests, and the segmenter a name resolves to."""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from pathlib import Path


def camseg_version() -> str:
    """camseg's version and a digest of its source: ``"0.1.0+src.<12 hex>"``.

    The version alone (``"unknown"`` when camseg is not installed, only on the
    path) would let an evaluation cached by older code pass for current: any
    change to the code of a module under ``camseg/`` that can change a computed
    number changes the digest (docstrings, comments and layout do not), so evaluations keyed by it
    are made again (trained checkpoints
    are keyed otherwise and kept). Modules that only present results
    (:data:`PRESENTATION_MODULES`) are left out, so editing a table or a
    chapter's helper does not cost a re-evaluation.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("camseg")
    except PackageNotFoundError:
        release = "unknown"
    return f"{release}+src.{_source_digest()}"


PRESENTATION_MODULES: frozenset[str] = frozenset({
    "__main__.py", "cli.py", "build/stages.py", "evaluation/failures.py",
    "evaluation/robustness.py", "build/bundle.py", "publishing/"})
"""camseg modules (paths under the package, a folder ending in ``/``) that format, plot or log
results and compute none of them."""

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The folder of the ``camseg`` package."""


def is_presentation(relative: str) -> bool:
    """Whether the module at ``relative`` (a POSIX path under the package) only presents results."""
    return any(relative == m or (m.endswith("/") and relative.startswith(m)) for m in PRESENTATION_MODULES)


@functools.cache
def _source_digest() -> str:
    import ast

    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT).as_posix()
        if is_presentation(relative):
            continue
        digest.update(relative.encode() + b"\0")
        digest.update(code_only(ast.parse(path.read_bytes())).encode())
    return digest.hexdigest()[:12]


def code_only(tree) -> str:
    """The module's syntax tree without docstrings, comments or layout: editing prose leaves it unchanged."""
    import ast

    def prose(stmt) -> bool:  # a docstring, or an attribute's docstring after an assignment
        return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and any(prose(b) for b in body):
            node.body = [b for b in body if not prose(b)] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()




def make_segmenter(name: str = "auto", device: str = "auto") -> tuple[object, str]:
    """The segmenter for ``name`` (``"auto"`` resolved by
    :func:`camseg.segmenters.choose_backend <camseg.segmenters.choice.choose_backend>`) on ``device``, and the
    reason it was chosen."""
    from camseg.segmenters import choose_backend, get_segmenter

    choice = choose_backend(name)
    kwargs = {"device": device} if choice.name.startswith("sam") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return get_segmenter(choice.name, **kwargs), choice.reason

