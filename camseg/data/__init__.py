"""Stage 1, data: the synthetic shapes and the images around them.

* :mod:`.shapes`: class names, image size, drawing one shape (its outline and mask).
* :mod:`.profiles`: shape distributions beyond the published generator (wide training data, the shift suite).
* :mod:`.dataset`: writing, verifying and reading dataset folders; normalisation; JPEG/noise degradation.
* :mod:`.sets`: training images drawn anew every epoch and fixed validation sets of a distribution.
* :mod:`.cifar`: the CIFAR-10 backgrounds (offline tar files or torchvision's download).
* :mod:`.io`: image and mask files at camseg's boundary (any mode in, lossless masks out).
"""
