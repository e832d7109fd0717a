"""Stamps made into model inputs, in torch on whole batches ``(N, C, H, W)`` float32.

- :mod:`pipeline.prep.preprocess`: Dieleman crop, downsample and 16 viewpoints; Deep-HiTS and ZTF
  normalisation; masked-pixel filling.
- :mod:`pipeline.prep.frame`: the ingest frame (centre crop and area-average done once at ingest), recorded in
  stores and model cards.
- :mod:`pipeline.prep.batch`: :class:`BatchPrep`, the one stamps-to-tensor step shared by training and scoring.
- :mod:`pipeline.prep.augment`: seeded augmentation: :class:`AugmentConfig` (what to apply), its presets and
  :class:`Augmenter` (applies a config in a fixed order), with the label safety of each transform.
- :mod:`pipeline.prep.geometric`: exact dihedral transforms, bilinear warps (rotation in degrees, shifts in
  pixels, zoom, flips), exact flips and integer shifts.
- :mod:`pipeline.prep.photometric`: Gaussian and Poisson-like noise, log-uniform brightness factors, colour
  perturbation along the principal components of the pixel colours.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "AugmentConfig": "augment",
    "Augmenter": "augment",
    "as_generator": "augment",
    "augment_preset": "augment",
    "make_augmenter": "augment",
    "affine_warp": "geometric",
    "all_dihedral": "geometric",
    "dihedral": "geometric",
    "exact_source_index": "geometric",
    "integer_shift": "geometric",
    "inverse_dihedral": "geometric",
    "permute_pixels": "geometric",
    "add_poisson_noise": "photometric",
    "color_perturb": "photometric",
    "fit_color_pca": "photometric",
    "FRAME_ATTR": "frame",
    "IngestFrame": "frame",
    "describe_frame": "frame",
    "frame_from": "frame",
    "frame_mismatch": "frame",
    "store_frame": "frame",
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
