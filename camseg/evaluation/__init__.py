"""Stage 6, evaluation: how good the masks and points are.

* :mod:`.metrics`: point hit rate, point distance, IoU.
* :mod:`.evaluate`: every pipeline and prompt strategy on a dataset split (``camseg evaluate``).
* :mod:`.robustness`: spread over seeds, metrics by condition; :mod:`.failures`: why an image failed.
* :mod:`.regionfit`: choosing the region score on validation data.
"""
