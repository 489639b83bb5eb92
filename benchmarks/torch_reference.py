"""The Sicara/DeblurGAN ResNet generator written directly in PyTorch: the reference the benchmarks
compare this package with (``bench_training.py --torch_reference``, ``bench_inference.py``).

Same layers as ``deblurgan.generator_model()``: 7x7 head, two stride-2 convolutions, 9 residual
blocks at 256 channels with batch norm, nearest-neighbour upsampling, 7x7 tail, global skip.
"""

import torch
from torch import nn


def res_block(ch):
    return nn.Sequential(
        nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.BatchNorm2d(ch), nn.ReLU(True), nn.Dropout(0.5),
        nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.BatchNorm2d(ch),
    )  # fmt: skip


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, 64, 7), nn.BatchNorm2d(64), nn.ReLU(True)]
        layers += [nn.Conv2d(64, 128, 3, 2, 1), nn.BatchNorm2d(128), nn.ReLU(True)]
        layers += [nn.Conv2d(128, 256, 3, 2, 1), nn.BatchNorm2d(256), nn.ReLU(True)]
        self.head = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(res_block(256) for _ in range(9))
        tail = [
            nn.Upsample(scale_factor=2),
            nn.Conv2d(256, 128, 3, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(True),
        ]
        tail += [
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(True),
        ]
        tail += [nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7), nn.Tanh()]
        self.tail = nn.Sequential(*tail)

    def forward(self, x):
        h = self.head(x)
        for block in self.blocks:
            h = h + block(h)
        return torch.clamp(x + self.tail(h), -1, 1)


def torch_generator():
    """The reference generator with PyTorch's default initialisation (NCHW, inputs in [-1, 1])."""
    return Generator()
