"""Stage 3, prompting: from a CAM heatmap to (x, y) point prompts.

* :mod:`.prompts`: the prompt strategies (:class:`~camseg.prompting.prompts.CamInterior`, ...) and
  their shared helpers (deepest point, background points).
* :mod:`.regions`: :class:`~camseg.prompting.regions.MaskScoring` and the region scores: which
  segmented region is the object the CAM explains.
"""
