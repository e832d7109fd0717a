"""The Dieleman model frame (:class:`models.components.dieleman.DielemanFrame`): crops, resampling and
per-stamp normalisation of stamps of any size."""

from __future__ import annotations

import pickle

import pytest
import torch

from models.components import DielemanFrame, DielemanNet
from models.morphology_config import MorphologyConfig
from pipeline.prep import center_crop, crop_and_downsample
from tests.models.helpers import galaxies

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_view_of_a_424_image_is_dielemans_centre_207_crop_downsampled_to_69():
    x = torch.rand(2, 3, 424, 424)
    frame = DielemanNet(MorphologyConfig.from_preset("dieleman2015")).frame
    framed = frame.geometry(x)
    assert framed.shape == (2, 3, 99, 99)
    expected = crop_and_downsample(x, crop=207, out=69)
    torch.testing.assert_close(center_crop(framed, 69), expected, atol=1e-6, rtol=0)


def test_framed_stamps_are_kept_small_ones_resampled_and_raw_images_cropped():
    frame = DielemanFrame(view_size=69, frame_size=99, crop_fraction=207 / 424)
    for side in (69, 99):
        x = torch.rand(2, 3, side, side)
        assert torch.equal(frame(x), x)
    assert frame(torch.rand(1, 3, 150, 150)).shape == (1, 3, 69, 69)  # shows the view's field: resampled
    assert frame(torch.rand(1, 3, 50, 50)).shape == (1, 3, 69, 69)
    assert frame(torch.rand(1, 3, 424, 424)).shape == (1, 3, 99, 99)  # raw image: Dieleman's crop
    assert pickle.loads(pickle.dumps(frame)) == frame
    with pytest.raises(ValueError, match="square"):
        frame(torch.rand(1, 3, 69, 70))


def test_native_scale_crops_stamps_at_the_models_pixel_scale_instead_of_resampling():
    frame = DielemanFrame(view_size=45, frame_size=65, crop_fraction=207 / 424, native_scale=True)
    x = torch.rand(2, 3, 69, 69)
    assert torch.equal(frame(x), center_crop(x, 65))  # a 69 px stamp: the central 65 px, pixels untouched
    assert torch.equal(frame(x[..., 1:-1, 1:-1]), center_crop(x, 65))  # 67 px
    assert torch.equal(frame(center_crop(x, 55)), center_crop(x, 45))  # between view and frame: the view
    assert frame(torch.rand(1, 3, 40, 40)).shape == (1, 3, 45, 45)  # smaller than the view: resampled
    assert frame(torch.rand(1, 3, 424, 424)).shape == (1, 3, 65, 65)  # raw images: Dieleman's crop as before
    assert "centre-cropped" in frame.describe()


def test_max_normalisation_scales_each_stamp_to_unit_peak():
    x = torch.rand(3, 3, 69, 69) * torch.tensor([1.0, 50.0, 1e4])[:, None, None, None]
    out = DielemanFrame(69, 99, 207 / 424, "max")(x)
    torch.testing.assert_close(out.abs().amax(dim=(1, 2, 3)), torch.ones(3))
    torch.testing.assert_close(out * x.amax(dim=(1, 2, 3), keepdim=True), x)


def test_asinh_stretch_is_scale_free_monotonic_and_keeps_colours_ordered():
    stamps, _ = galaxies(3, 69, seed=4)
    x = torch.from_numpy(stamps)
    frame = DielemanFrame(69, 99, 207 / 424, "asinh")
    out = frame(x)
    torch.testing.assert_close(frame(x * 1000.0), out, atol=1e-5, rtol=1e-5)  # flux units do not matter
    assert float(out.abs().amax()) == pytest.approx(1.0)
    flat_in, flat_out = x[0, 1].flatten(), out[0, 1].flatten()
    order = torch.argsort(flat_in)
    assert (flat_out[order].diff() >= 0).all()  # monotonic per pixel
    centre = out[:, :, 34, 34]
    assert (centre[:, 2] > centre[:, 0]).all()  # the red discs stay redder (one sigma for all bands)
    faint = out[0, 1][out[0, 1] > 0].median() / out[0, 1].max()
    linear = x[0, 1][x[0, 1] > 0].median() / x[0, 1].max()
    assert faint > 3 * linear  # faint light is lifted relative to the peak
