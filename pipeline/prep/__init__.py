"""Stamps made into model inputs, in torch on whole batches ``(N, C, H, W)`` float32.

- :mod:`pipeline.prep.preprocess`: Dieleman crop, downsample and 16 viewpoints; Deep-HiTS and ZTF
  normalisation; masked-pixel filling.
- :mod:`pipeline.prep.batch`: :class:`BatchPrep`, the one stamps-to-tensor step shared by training and scoring.
- :mod:`pipeline.prep.augment`: seeded rotations, flips, shifts, noise and colour augmentation.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "AugmentConfig": "augment",
    "Augmenter": "augment",
    "add_poisson_noise": "augment",
    "affine_warp": "augment",
    "all_dihedral": "augment",
    "as_generator": "augment",
    "augment_preset": "augment",
    "color_perturb": "augment",
    "dihedral": "augment",
    "fit_color_pca": "augment",
    "integer_shift": "augment",
    "inverse_dihedral": "augment",
    "make_augmenter": "augment",
    "BatchPrep": "batch",
    "PREP_KEYS": "batch",
    "prepare_batch": "batch",
    "DielemanViewpoints": "preprocess",
    "as_batch": "preprocess",
    "center_crop": "preprocess",
    "crop_and_downsample": "preprocess",
    "deep_hits_normalize": "preprocess",
    "dieleman_viewpoints": "preprocess",
    "fill_masked": "preprocess",
    "get_preprocessor": "preprocess",
    "minmax_scale": "preprocess",
    "robust_sigma": "preprocess",
    "ztf_normalize": "preprocess",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
