"""The plain ``nn.Module`` parts of the models: layers and networks, no Lightning (docs/design.md, Models).

A LightningModule (:mod:`models.morphology`, :mod:`models.realbogus`) receives or builds one of these
networks from its config and keeps only training, validation and optimiser logic.

- :mod:`models.components.layers`: conv stacks (:class:`ConvSpec`, :func:`conv_stack`), untied biases,
  maxout, cyclic slicing and pooling, the Galaxy Zoo decision-tree output layer, initialisation helpers.
- :mod:`models.components.dieleman`: :class:`DielemanFrame` (stamps -> model frame), :class:`GalaxyZooNet`
  (the base of the morphology networks) and :class:`DielemanNet` (Dieleman et al. 2015 morphology
  network, 37 Galaxy Zoo answers).
- :mod:`models.components.resnet`: :class:`ResNetNet` (a ResNet, e.g. the ResNet-18 layout, with the same
  frame and Galaxy Zoo tree output as :class:`DielemanNet`) and its :class:`BasicBlock`.
- :mod:`models.components.deep_hits`: :class:`RealBogusInput` (stamp normalisation) and
  :class:`DeepHitsNet` (Cabrera-Vives et al. 2017 real-bogus network, K class logits).
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "DeepHitsNet": "deep_hits",
    "RealBogusInput": "deep_hits",
    "DIELEMAN_INIT": "dieleman",
    "RAW_FACTOR": "dieleman",
    "DielemanFrame": "dieleman",
    "DielemanNet": "dieleman",
    "GalaxyZooNet": "dieleman",
    "model_frame": "dieleman",
    "BasicBlock": "resnet",
    "ResNetNet": "resnet",
    "ACTIVATIONS": "layers",
    "CYCLIC_POOLS": "layers",
    "ConvSpec": "layers",
    "CyclicPool": "layers",
    "GalaxyZooTree": "layers",
    "Maxout": "layers",
    "UntiedBias2d": "layers",
    "conv_chunk_items": "layers",
    "conv_output_shape": "layers",
    "conv_spec_tuples": "layers",
    "conv_stack": "layers",
    "count_parameters": "layers",
    "cyclic_slice": "layers",
    "in_chunks": "layers",
    "init_normal_": "layers",
    "make_activation": "layers",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
