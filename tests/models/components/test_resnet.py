"""The ResNet backbone of the morphology model (:mod:`models.components.resnet`): shapes, the Galaxy Zoo tree
output, the ResNet-18 layout, training, and its settings in :class:`models.morphology_config.MorphologyConfig`."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from data_catalogs.galaxy_zoo import tree_violations
from models.components import BasicBlock, ResNetNet, count_parameters
from models.morphology import MorphologyModel
from models.morphology_config import RESNET_FIELDS, MorphologyConfig
from tests.models.helpers import fixed_batch_losses, galaxies

pytestmark = pytest.mark.usefixtures("one_torch_thread")
#: torchvision's resnet18 (11,689,512 parameters) without its 1000-class fc layer (512 * 1000 + 1000).
RESNET18_CONV_PARAMETERS = 11_689_512 - 513_000


#: A quarter-width ResNet-18 (0.71 million parameters): fast enough for the tests.
SMALL = {"resnet_widths": (16, 32, 64, 128)}


def _net(preset: str = "resnet18", **overrides) -> ResNetNet:
    return ResNetNet(MorphologyConfig.from_preset(preset, **{**SMALL, **overrides}))


def test_resnet18_layout_has_the_parameters_of_torchvisions_resnet18_convolutions():
    net = _net("resnet18", resnet_widths=(64, 128, 256, 512))
    assert count_parameters(net.stem) + count_parameters(net.stages) == RESNET18_CONV_PARAMETERS
    assert [len(stage) for stage in net.stages] == [2, 2, 2, 2]
    assert all(isinstance(block, BasicBlock) for stage in net.stages for block in stage)
    assert count_parameters(net.head) == 512 * 37 + 37


def test_raw_images_and_framed_stamps_give_37_answers_through_the_stages():
    torch.manual_seed(0)
    net = _net("resnet18", resnet_widths=(64, 128, 256, 512)).eval()
    raw = torch.rand(2, 3, 424, 424)
    framed = net.frame.geometry(raw)
    assert framed.shape == (2, 3, 69, 69)  # Dieleman's centre 207 px, downsampled 3x
    x = net.stem(net.frame(raw))
    assert x.shape == (2, 64, 18, 18)
    sides = []
    for stage in net.stages:
        x = stage(x)
        sides.append((x.shape[1], x.shape[-1]))
    assert sides == [(64, 18), (128, 9), (256, 5), (512, 3)]
    with torch.no_grad():
        out = net(raw)
        assert out.shape == (2, 37)
        torch.testing.assert_close(net(framed), out)  # a framed store scores like the raw images


def test_outputs_satisfy_the_galaxy_zoo_tree_plain_and_with_tta():
    torch.manual_seed(1)
    net = _net().eval()
    x = torch.randn(6, 3, 69, 69) * 3
    with torch.no_grad():
        for out in (net(x), net.forward_tta(x)):
            assert out.shape == (6, 37)
            assert float(out.min()) >= 0 and float(out.max()) <= 1
            assert not any(tree_violations(out.double().numpy(), tol=1e-5))


def test_a_few_adam_steps_lower_the_loss_on_a_tiny_batch():
    torch.manual_seed(2)
    stamps, labels = galaxies(8, 32, seed=3)
    net = _net(input_size=32)
    losses = fixed_batch_losses(
        net, torch.optim.Adam(net.parameters(), 1e-3), F.mse_loss,
        torch.from_numpy(stamps), torch.from_numpy(labels), steps=20,
    )  # fmt: skip
    assert losses[-1] < 0.5 * losses[0], losses


def test_the_morphology_model_builds_a_resnet_and_saves_its_settings():
    model = MorphologyModel("resnet18", dropout=0.1, **SMALL)
    assert isinstance(model.net, ResNetNet)
    hparams = dict(model.hparams)
    assert hparams["backbone"] == "resnet" and hparams["resnet_widths"] == [16, 32, 64, 128]
    rebuilt = MorphologyModel(**hparams)  # what a checkpoint does
    assert rebuilt.config == model.config
    assert set(rebuilt.state_dict()) == set(model.state_dict())
    assert model.card_fields()["backbone"] == "resnet"
    dieleman = MorphologyModel("small")
    assert not set(RESNET_FIELDS) & set(dieleman.hparams)  # checkpoints of before keep their settings
    assert "backbone" not in dieleman.card_fields()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"viewpoints": True}, "viewpoints=False"),
        ({"init": "dieleman"}, "init='torch'"),
        ({"resnet_blocks": (2, 2)}, "one positive number per stage"),
        ({"resnet_stem": (7, 0, 2)}, "kernel, stride, pool"),
        ({"backbone": "vgg"}, "backbone must be one of"),
    ],
)
def test_bad_resnet_settings_are_refused_naming_the_setting(overrides, message):
    with pytest.raises(ValueError, match=message):
        MorphologyConfig.from_preset("resnet18", **overrides)
