"""Stage 5, pipelines: image in, mask out, with no user input.

* :mod:`.pipeline`: the three pipelines (centre point, foreground points, foreground + background).
* :mod:`.segment`: one image of any size (classify at the classifier's size, segment at the image's).
"""
