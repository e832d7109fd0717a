"""The LightningModule contract shared by the models (:mod:`models.stamp_module`): a model receives or builds
its net from its config, and checkpoints saved before the networks moved to :mod:`models.components` load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.checkpoints import load_checkpoint
from models.components import DeepHitsNet, DielemanNet
from models.morphology import MorphologyModel
from models.morphology_config import MorphologyConfig
from models.realbogus import RealBogusModel
from models.realbogus_config import RealBogusConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
#: captured before the move (see its ``_about``)
LAYOUTS = json.loads((Path(__file__).with_name("model_layouts.json")).read_text())
CASES = sorted(name for name in LAYOUTS if not name.startswith("_"))
MODELS = {"morphology": (MorphologyModel, MorphologyConfig, DielemanNet, (2, 3, 69, 69)),
          "realbogus": (RealBogusModel, RealBogusConfig, DeepHitsNet, (2, 4, 21, 21))}  # fmt: skip


@pytest.mark.parametrize(("task", "preset", "overrides"), [
    ("morphology", "small", {"cyclic_pool": "mean"}),
    ("realbogus", "hits", {"merge": "max", "dropout": 0.25}),
])  # fmt: skip
def test_a_model_given_a_net_uses_that_net(task, preset, overrides):
    model_cls, config_cls, net_cls, shape = MODELS[task]
    net = net_cls(config_cls.from_preset(preset, **overrides))
    model = model_cls(preset, net=net, **overrides).eval()
    assert model.net is net
    assert set(model.state_dict()) >= {f"net.{key}" for key in net.state_dict()}
    x = torch.rand(*shape)
    with torch.no_grad():
        assert torch.equal(model(x), net.eval()(x))
    assert dict(model.hparams) == {"preset": preset, **model.config.to_dict()}  # the net is not a setting
    assert model_cls(**model.hparams).config == net.config  # a checkpoint rebuilds the same network


@pytest.mark.parametrize("task", sorted(MODELS))
def test_a_net_built_from_another_config_is_refused(task):
    model_cls, config_cls, net_cls, _ = MODELS[task]
    preset = "small" if task == "morphology" else "hits"
    net = net_cls(config_cls.from_preset(preset, dropout=0.1))
    with pytest.raises(ValueError, match="another config"):
        model_cls(preset, net=net)


@pytest.mark.parametrize("case", CASES)
def test_state_dict_names_settings_and_card_fields_are_those_of_checkpoints_saved_before(case):
    layout = LAYOUTS[case]
    model_cls = MODELS[case.split("/")[0]][0]
    torch.manual_seed(0)
    model = model_cls(layout["preset"], **layout["overrides"])
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == layout["state_dict"]
    assert json.loads(json.dumps(dict(model.hparams))) == layout["hyper_parameters"]
    assert json.loads(json.dumps(model.card_fields())) == layout["card_fields"]


@pytest.mark.parametrize("case", ["morphology/small-cyclic-untied", "realbogus/hits-mean-snr"])
def test_a_checkpoint_in_the_layout_saved_before_loads(case, tmp_path):
    """A checkpoint payload as written before the move (old hyper-parameters and key names) loads strictly."""
    layout = LAYOUTS[case]
    gen = torch.Generator().manual_seed(1)
    state = {k: torch.randn(tuple(shape), generator=gen) for k, shape in layout["state_dict"].items()}
    card = {"task": case.split("/")[0], "output_names": layout["card_fields"]["output_names"]}
    payload = {
        "state_dict": state,
        "hyper_parameters": layout["hyper_parameters"],
        "model_card": json.dumps(card),
    }
    torch.save(payload, tmp_path / "model.ckpt")
    module, loaded_card = load_checkpoint(tmp_path / "model.ckpt")
    assert loaded_card == card and not module.training
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key
