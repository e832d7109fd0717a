"""The images of a Galaxy Zoo catalog: found by file entry or id (:class:`ImageIndex`), read as stamps with
their band names (:func:`read_galaxy_image`), and framed at ingest (:func:`frame_image`).

JPEG and PNG images are read by :mod:`pipeline.io.images`; their R, G, B planes are named after the bands
they show (:data:`DEFAULT_BANDS`: the SDSS colour images of Kaggle and GZ2 are gri composites with i in R,
r in G, g in B; the GZ DECaLS ones are grz composites with z in R). FITS images are read by
:func:`pipeline.io.fits.read_stamp` and keep their own channel names (``CHNAME1..``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.ingest.inputs import InputFiles
from pipeline.io import StampRejected, header_pixel_scale, is_fits_name, is_image_file, read_image, read_stamp
from pipeline.prep.frame import IngestFrame

#: Extensions tried, in order, when an image is looked up by galaxy id (matched case-insensitively).
ID_EXTENSIONS = (".jpg", ".jpeg", ".png", ".fits", ".fits.gz", ".fit", ".fit.gz", ".fts")

#: Catalog format -> the bands of the R, G, B planes of its colour (JPEG/PNG) images.
DEFAULT_BANDS = {"kaggle": ("i", "r", "g"), "gz2": ("i", "r", "g"), "decals": ("z", "r", "g")}

#: Reject reasons added by this module (see :data:`pipeline.io.rejects.REASONS` for the others).
REASONS = {"smaller_than_frame": "the image is smaller than the ingest frame's crop"}


class ImageIndex:
    """Finds each galaxy's image in a folder: by a catalog file entry or by ``{id}{ext}``."""

    def __init__(self, images_dir: str | os.PathLike):
        self.root = Path(images_dir)
        self._by_name: dict[str, Path] = {}
        with os.scandir(self.root) as entries:
            for entry in entries:
                # a link that loops or whose target is gone is listed too: its row's read names the problem
                # (``unreadable``), where is_file() would raise (ELOOP) or hide the image as missing
                if entry.is_symlink() or entry.is_file():
                    self._by_name.setdefault(entry.name.lower(), Path(entry.path))

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> set[str]:
        """Lower-case file names in the folder (top level)."""
        return set(self._by_name)

    def find(self, object_id: str, file: str | None = None) -> Path:
        """The image path for a row; StampRejected(``missing_image``) naming what was tried."""
        if file:
            given = Path(file)
            tried = [given] if given.is_absolute() else []
            tried += [self.root / given, self.root / given.name]
            for path in tried:
                if path.is_file():
                    return path
            raise StampRejected(
                "missing_image", f"image file {file!r} not found (tried {', '.join(str(p) for p in tried)})"
            )
        for ext in ID_EXTENSIONS:
            path = self._by_name.get(f"{object_id}{ext}".lower())
            if path is not None:
                return path
        raise StampRejected(
            "missing_image",
            f"no image {object_id}{{{','.join(ID_EXTENSIONS)}}} in {self.root}",
        )


@dataclass
class GalaxyImage:
    """One galaxy image read for the store.

    Attributes:
        path: the image file.
        pixels: ``(C, H, W)`` float32 (JPEG/PNG values in [0, 1]).
        mask: ``(C, H, W)`` bool, True where a pixel is invalid.
        channels: the C channel (band) names.
        sha256: sha256 of the file.
        pixel_scale_arcsec: from a FITS header, else None.
        eight_bit: an 8-bit JPEG/PNG (pixels ``k / 255`` before any frame).
    """

    path: Path
    pixels: np.ndarray
    mask: np.ndarray
    channels: list[str]
    sha256: str
    pixel_scale_arcsec: float | None = None
    eight_bit: bool = False


def read_galaxy_image(
    inputs: InputFiles, path: Path, bands: Sequence[str], centre: int | None = None
) -> GalaxyImage:
    """Read a JPEG/PNG (its planes named ``bands``; only the centre ``centre`` px when given, the crop of
    a frame: :func:`pipeline.io.read_image`) or FITS image; StampRejected naming the file."""
    data, sha256 = inputs.read(path)
    if is_image_file(path):
        img = read_image(data, name=str(path), centre=centre)
        return GalaxyImage(path, img.pixels, img.mask, list(bands), sha256, None, img.eight_bit)
    if is_fits_name(path):
        stamp = read_stamp(data, name=str(path))
        return GalaxyImage(path, stamp.pixels, stamp.mask, stamp.channels, sha256, header_pixel_scale(stamp))
    raise StampRejected("not_image", f"{path}: unsupported image type (use JPEG, PNG or FITS)")


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch ops of this thread on one intra-op thread, the previous count restored after.

    The decode threads are the parallelism of an ingest: a 3x424x424 frame took 23 ms with torch's own
    2 OpenMP threads per op on a busy 2-core machine and 2.9 ms with one (the OpenMP thread count is per
    calling thread, and the result does not depend on it).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def frame_image(image: GalaxyImage, frame: IngestFrame) -> GalaxyImage:
    """The image centre-cropped and area-averaged by ``frame`` (a pixel is masked when any pixel it
    averages is); StampRejected(``smaller_than_frame``) when the image is smaller than the crop."""
    try:
        with one_torch_thread():
            pixels = frame.apply(image.pixels)
            mask = frame.apply_mask(image.mask)
    except ValueError as err:
        raise StampRejected("smaller_than_frame", f"{image.path}: {err}") from err
    return replace(image, pixels=pixels, mask=mask)
