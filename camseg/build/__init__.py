"""Stage 7, build: the computed results behind the book, cached on disk.

* :mod:`.artifacts`: the dataset, classifier, evaluations and CAM study of one seed
  (:class:`~camseg.build.artifacts.Artifacts`).
* :mod:`.suite`: the classifier seeds and the shift suite with their evaluations.
* :mod:`.keys`: what a cached artefact is keyed on; :mod:`.stages`: wall time and memory of each stage.
"""
