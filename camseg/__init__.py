"""camseg: segmentation without user input.

A classifier says *what* is in an image, Grad-CAM says *where* it looked, and
camseg turns that heatmap into (x, y) point prompts for a promptable segmenter
(SAM or an offline backend), which returns the mask.

The public names below are attached lazily (scikit-image's pattern, the
Scientific Python community's lazy-loading recommendation): ``import camseg``
is cheap and does not import torch; ``camseg.GradCAM`` imports what it needs on first use. The
subpackages follow the pipeline's stages, each importing only those below it:
:mod:`camseg.utils` → :mod:`camseg.data` → :mod:`camseg.models` →
:mod:`camseg.prompting` and :mod:`camseg.segmenters` → :mod:`camseg.pipelines`
→ :mod:`camseg.evaluation` → :mod:`camseg.build` → :mod:`camseg.publishing`
→ :mod:`camseg.cli`.

Example:
    >>> import camseg
    >>> camseg.CLASSES
    ('circle', 'square', 'triangle', 'star', 'diamond')
"""

from importlib.metadata import PackageNotFoundError, version

import lazy_loader as _lazy

__getattr__, _, __all__ = _lazy.attach_stub(__name__, __file__)

try:
    __version__: str = version("camseg")
except PackageNotFoundError:  # pragma: no cover - a source tree on sys.path, not installed
    __version__ = "0.0.0+unknown"

__all__ += ["__version__"]


def __dir__() -> list[str]:
    """The public names: those of the stub, and ``__version__``."""
    return list(__all__)

del PackageNotFoundError, version
