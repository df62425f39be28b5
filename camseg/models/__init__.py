"""Stage 2, models: the classifier and the heatmaps that explain it.

* :mod:`.classifier`: architectures, training, checkpoints, prediction and the flips' vote.
* :mod:`.cam`: Grad-CAM and Grad-CAM++ behind one base class; the eval-mode context manager.
* :mod:`.analysis`: how well a heatmap points at the object; a CAM-only segmentation baseline.
"""
