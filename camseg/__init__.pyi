# The public API of camseg, for type checkers; camseg/__init__.py attaches these names lazily
# (lazy_loader.attach_stub), so `import camseg` stays cheap and imports torch only when a name is used.
from .build.artifacts import Artifacts, build_artifacts
from .data.dataset import ShapesDataset, build_dataset, denormalize, normalize
from .data.shapes import CLASSES, IMAGE_SIZE
from .evaluation.metrics import iou, iou_per_image, mean_iou, point_distances, point_hits, point_metrics
from .models.cam import AugmentedCAM, BaseCAM, GradCAM, GradCAMPlusPlus, eval_mode
from .models.classifier import default_cam, default_target_layers, load_checkpoint, predict
from .pipelines.pipeline import BasicSamPipeline, ForegroundBackgroundPipeline, ForegroundPointsPipeline
from .pipelines.segment import segment_image
from .segmenters import SEGMENTERS, get_segmenter

__version__: str

__all__ = [
    "CLASSES",
    "IMAGE_SIZE",
    "SEGMENTERS",
    "Artifacts",
    "AugmentedCAM",
    "BaseCAM",
    "BasicSamPipeline",
    "ForegroundBackgroundPipeline",
    "ForegroundPointsPipeline",
    "GradCAM",
    "GradCAMPlusPlus",
    "ShapesDataset",
    "__version__",
    "build_artifacts",
    "build_dataset",
    "default_cam",
    "default_target_layers",
    "denormalize",
    "eval_mode",
    "get_segmenter",
    "iou",
    "iou_per_image",
    "mean_iou",
    "normalize",
    "load_checkpoint",
    "point_distances",
    "point_hits",
    "point_metrics",
    "predict",
    "segment_image",
]
