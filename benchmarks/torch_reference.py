"""The Sicara/DeblurGAN ResNet generator written directly in PyTorch: the reference the benchmarks
compare this package with (``bench_training.py --torch_reference``, ``bench_inference.py``).

Same layers as ``deblurgan.generator_model()``: 7x7 head, two stride-2 convolutions, 9 residual
blocks at 256 channels with batch norm, nearest-neighbour upsampling, 7x7 tail, global skip
(``clip(input + tanh)``, the generator's ``output_mode="clip"``). ``torch_generator(norm=False,
dropout_rate=0)`` is the variant of ``norm="none", dropout_rate=0`` (``bench_train_step.py``).
"""

import torch
from torch import nn


def res_block(ch, norm=True, dropout_rate=0.5):
    norm_layer = nn.BatchNorm2d if norm else (lambda _: nn.Identity())
    dropout = [nn.Dropout(dropout_rate)] if dropout_rate else []
    return nn.Sequential(
        nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(ch), nn.ReLU(True), *dropout,
        nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(ch),
    )  # fmt: skip


class Generator(nn.Module):
    def __init__(self, norm=True, dropout_rate=0.5):
        super().__init__()
        norm_layer = nn.BatchNorm2d if norm else (lambda _: nn.Identity())
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, 64, 7), norm_layer(64), nn.ReLU(True)]
        layers += [nn.Conv2d(64, 128, 3, 2, 1), norm_layer(128), nn.ReLU(True)]
        layers += [nn.Conv2d(128, 256, 3, 2, 1), norm_layer(256), nn.ReLU(True)]
        self.head = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(res_block(256, norm, dropout_rate) for _ in range(9))
        tail = []
        for ch in (256, 128):
            tail += [nn.Upsample(scale_factor=2), nn.Conv2d(ch, ch // 2, 3, padding=1), norm_layer(ch // 2)]
            tail += [nn.ReLU(True)]
        tail += [nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7), nn.Tanh()]
        self.tail = nn.Sequential(*tail)

    def forward(self, x):
        h = self.head(x)
        for block in self.blocks:
            h = h + block(h)
        return torch.clamp(x + self.tail(h), -1, 1)


def torch_generator(norm=True, dropout_rate=0.5):
    """The reference generator with PyTorch's default initialisation (NCHW, inputs in [-1, 1]);
    ``norm``: batch norm after each convolution, ``dropout_rate``: in each residual block."""
    return Generator(norm, dropout_rate)
