"""A residual network (He et al. 2016) with the Galaxy Zoo tree output, as a plain ``nn.Module``.

The backbone family galaxy morphology moved to after Dieleman et al. 2015 (e.g. Walmsley et al. 2022 use
ResNets and EfficientNets), written here without torchvision:

- :class:`BasicBlock`: two 3x3 convolutions with batch norm and a shortcut (1x1 convolution + batch norm
  when the stride or the width changes): ``(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)``.
- :class:`ResNetNet`: raw stamps ``(N, C, S, S)`` -> ``(N, 37)`` Galaxy Zoo cumulative vote fractions,
  built from a :class:`models.morphology_config.MorphologyConfig` with ``backbone="resnet"``: the same
  model frame as :class:`models.components.dieleman.DielemanNet` (so it scores the same stores), its
  central ``input_size`` px view, a stem (``resnet_stem``: a ``k x k`` convolution of stride ``s`` to
  ``resnet_widths[0]`` channels, batch norm, ReLU, then a 3x3 max-pool of stride ``p`` when ``p > 1``),
  one stage of ``resnet_blocks[i]`` basic blocks per width (stride 2 from the second stage on), global
  average pooling, dropout, a linear layer to 37 logits and the tree output
  (:class:`models.components.layers.GalaxyZooTree`).

``resnet_widths=(64, 128, 256, 512)``, ``resnet_blocks=(2, 2, 2, 2)``, ``resnet_stem=(7, 2, 2)`` is the
ResNet-18 layout (11.2 million parameters in its convolutions and batch norms for 3 input channels).
Shapes for the ``resnet18`` preset (a 64 px view): stem ``(N, 64, 16, 16)``, stages 16, 8, 4, 2 px, pooled
``(N, 512)``, logits ``(N, 37)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from data_catalogs.galaxy_zoo import N_ANSWERS
from models.components.dieleman import DIELEMAN_INIT, GalaxyZooNet, model_frame
from models.components.layers import GalaxyZooTree, init_normal_
from models.morphology_config import MorphologyConfig
from pipeline.prep import center_crop


class BasicBlock(nn.Module):
    """``conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN``, plus the shortcut, then ReLU.

    The shortcut is the identity when the shape is kept, else a 1x1 convolution of ``stride`` and batch
    norm. ``(N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def resnet_stem(in_channels: int, width: int, kernel: int, stride: int, pool: int) -> nn.Sequential:
    """``conv k x k (stride, 'same' padding) -> BN -> ReLU [-> 3x3 max-pool of stride pool]``."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, width, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    if pool > 1:
        layers.append(nn.MaxPool2d(3, pool, 1))
    return nn.Sequential(*layers)


def resnet_stages(widths: tuple[int, ...], blocks: tuple[int, ...]) -> nn.Sequential:
    """One stage of ``blocks[i]`` :class:`BasicBlock` per width; the first block of every stage after the
    first halves the side (stride 2). Input: ``(N, widths[0], H, W)``."""
    stages: list[nn.Module] = []
    channels = widths[0]
    for i, (width, n_blocks) in enumerate(zip(widths, blocks, strict=True)):
        stage = [BasicBlock(channels, width, stride=1 if i == 0 else 2)]
        stage += [BasicBlock(width, width) for _ in range(n_blocks - 1)]
        stages.append(nn.Sequential(*stage))
        channels = width
    return nn.Sequential(*stages)


class ResNetNet(GalaxyZooNet):
    """Raw stamps ``(N, C, S, S)`` -> ``(N, 37)`` cumulative fractions: a ResNet on the central view.

    The network of :class:`models.morphology.MorphologyModel` when ``config.backbone == "resnet"`` (state
    dict keys ``net.stem``, ``net.stages``, ``net.head``; ``frame``, ``pool`` and ``tree`` hold no weights).
    Initialisation: He (fan-out) for the convolutions, batch norms at weight 1 and bias 0 and the last batch
    norm of each block at weight 0 (each block starts as the identity, Goyal et al. 2017), and Dieleman's
    output layer (a positive bias keeps the ReLU of the tree layer alive at the start).
    """

    def __init__(self, config: MorphologyConfig):
        super().__init__()
        c = self.config = config
        kernel, stride, pool = c.resnet_stem
        self.frame = model_frame(c)
        self.stem = resnet_stem(c.input_channels, c.resnet_widths[0], kernel, stride, pool)
        self.stages = resnet_stages(c.resnet_widths, c.resnet_blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.resnet_widths[-1], N_ANSWERS))
        self.tree = GalaxyZooTree(c.tree_eps)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
        init_normal_(self.head[-1], DIELEMAN_INIT["output_std"], DIELEMAN_INIT["output_bias"])

    def features(self, frame: Tensor) -> Tensor:
        """Framed stamps ``(N, C, F, F)`` -> pooled features ``(N, resnet_widths[-1])`` of the central view."""
        view = (
            center_crop(frame, self.config.input_size) if frame.shape[-1] > self.config.input_size else frame
        )
        return self.pool(self.stages(self.stem(view))).flatten(1)

    def logits(self, frame: Tensor) -> Tensor:
        """Framed stamps ``(N, C, F, F)`` -> ``(N, 37)`` logits."""
        return self.head(self.features(frame))
