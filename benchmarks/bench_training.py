"""Training throughput of the full networks at 256x256 crops, per GAN mode and batch size.

    python benchmarks/bench_training.py                       # all modes, batch 1 and 16
    python benchmarks/bench_training.py --modes wgan-gp --batch_sizes 1 --torch_reference

One iteration is ``critic_updates`` critic steps and one generator step (what scripts/train.py
does per batch). Image-steps per second = batch size / seconds per iteration. With
``--torch_reference`` the same generator and PatchGAN critic written directly in PyTorch run the
same WGAN-GP iteration on the same CPU, for comparison. The data loader's images per second come
from bench_data.measure_loader on generated 1280x720 pairs.

``--devices 1,2,4`` trains data-parallel (deblurgan.distribution, as scripts/train.py --devices) on
each device count in turn, each in its own process, the batch size being the global batch; on a
CPU the devices are virtual (they share the same cores), so the figures show only the shape of the
scaling, not a speed-up.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _virtual_cpu_devices(argv):  # as scripts/train.py: XLA_FLAGS must precede the import of JAX
    values = [b for a, b in zip(argv, argv[1:], strict=False) if a == "--devices"]
    if values and values[-1].isdigit() and int(values[-1]) > 1:
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
        os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={values[-1]}"])


_virtual_cpu_devices(sys.argv)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from deblurgan import distribution, losses  # noqa: E402
from deblurgan.model import discriminator_model, generator_model, patchgan_critic_model  # noqa: E402
from deblurgan.training import GAN_MODES, DeblurGANTrainer  # noqa: E402


def keras_iteration_seconds(
    gan_mode, batch_size, crop, critic_updates, content, runs, replicas=None, n_filters=64, n_blocks=9
):  # fmt: skip
    replicas = replicas or distribution.Replicas()
    with replicas.scope():
        return _iteration_seconds(
            gan_mode, batch_size, crop, critic_updates, content, runs, n_filters, n_blocks
        )  # fmt: skip


def _iteration_seconds(gan_mode, batch_size, crop, critic_updates, content, runs, n_filters, n_blocks):
    keras.utils.set_random_seed(0)
    generator = generator_model(n_filters=n_filters, n_blocks=n_blocks)
    critic = None
    if gan_mode == "wgan":
        critic = discriminator_model(input_shape=(crop, crop, 3), n_filters=n_filters)
    elif gan_mode != "none":
        critic = patchgan_critic_model(n_filters=n_filters)
    content_loss = (
        losses.PerceptualLoss(weights=None) if content == "perceptual" else losses.content_loss(content)
    )
    trainer = DeblurGANTrainer(
        generator, critic, gan_mode=gan_mode, content_loss=content_loss, critic_updates=critic_updates
    )
    rng = np.random.default_rng(0)
    blurred = rng.uniform(-1, 1, (batch_size, crop, crop, 3)).astype("float32")
    sharp = rng.uniform(-1, 1, (batch_size, crop, crop, 3)).astype("float32")
    trainer.train_on_batch(blurred, sharp)  # compile / warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        trainer.train_on_batch(blurred, sharp)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def torch_reference_seconds(batch_size, crop, critic_updates, runs):
    """The same ResNet generator and PatchGAN critic in plain PyTorch, WGAN-GP, L1 content loss."""
    import torch
    from torch import nn
    from torch_reference import torch_generator  # benchmarks/ is the script's folder

    torch.manual_seed(0)

    def critic():
        layers, ch = [nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2, True)], 64
        for n in range(1, 4):
            out = 64 * min(2**n, 8)
            layers += [
                nn.Conv2d(ch, out, 4, 2, 1),
                nn.InstanceNorm2d(out, affine=True),
                nn.LeakyReLU(0.2, True),
            ]
            ch = out
        layers += [nn.Conv2d(ch, 512, 4, 1, 1), nn.InstanceNorm2d(512, affine=True), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(512, 1, 4, 1, 1)]
        return nn.Sequential(*layers)

    g, d = torch_generator(), critic()
    g_opt = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.5, 0.999))
    blurred = torch.rand(batch_size, 3, crop, crop) * 2 - 1
    sharp = torch.rand(batch_size, 3, crop, crop) * 2 - 1

    def iteration():
        with torch.no_grad():
            fake = g(blurred)
        for _ in range(critic_updates):
            d_opt.zero_grad()
            alpha = torch.rand(batch_size, 1, 1, 1)
            x_hat = (alpha * sharp + (1 - alpha) * fake).requires_grad_(True)
            grads = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)[0]
            penalty = ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
            loss = d(fake).mean() - d(sharp).mean() + 10 * penalty
            loss.backward()
            d_opt.step()
        g_opt.zero_grad()
        restored = g(blurred)
        loss = 100 * (restored - sharp).abs().mean() - d(restored).mean()
        loss.backward()
        g_opt.step()

    iteration()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="none,wgan,wgan-gp,wgan-clip")
    parser.add_argument("--batch_sizes", default="1,16")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--critic_updates", type=int, default=5)
    parser.add_argument("--content_loss", default="l1", choices=["l1", "mse", "perceptual"])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--torch_reference", action="store_true")
    parser.add_argument("--loader", action="store_true", help="also measure the data loader")
    parser.add_argument("--devices", default=None, help="device counts, e.g. 1,2,4 (data-parallel)")
    parser.add_argument("--n_filters", type=int, default=64, help="smaller networks for a smoke run")
    parser.add_argument("--n_blocks", type=int, default=9)
    args = parser.parse_args()
    unknown = [mode for mode in args.modes.split(",") if mode not in GAN_MODES]
    if unknown:  # before any mode is timed
        parser.error(f"--modes: unknown {', '.join(unknown)}; choose from {', '.join(GAN_MODES)}")
    if args.torch_reference and (args.n_filters, args.n_blocks) != (64, 9):  # it times the full networks
        parser.error("--torch_reference: times the full-size networks; leave --n_filters and --n_blocks out")
    if args.torch_reference and args.crop < 64:  # the critic's last instance norm needs 2x2 at least
        parser.error(f"--crop {args.crop}: --torch_reference's PatchGAN critic needs at least 64")
    if args.devices is not None and not args.devices.isdigit():
        return _each_device_count(args)

    replicas = distribution.start(devices=int(args.devices)) if args.devices else None
    devices = replicas.n_devices if replicas else 1
    if os.environ.get("_BENCH_TRAINING_HEADER", "1") == "1":
        print(
            f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs, crop {args.crop}, "
            f"critic_updates {args.critic_updates}, content {args.content_loss}, median of {args.runs}"
        )
        print(f"{'mode':<10} {'devices':>7} {'batch':>5} {'s/iteration':>12} {'image-steps/s':>14}")
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        for mode in args.modes.split(","):
            seconds = keras_iteration_seconds(
                mode, batch_size, args.crop, args.critic_updates, args.content_loss, args.runs,
                replicas, args.n_filters, args.n_blocks,
            )  # fmt: skip
            rate = batch_size / seconds
            print(f"{mode:<10} {devices:>7} {batch_size:>5} {seconds:>12.2f} {rate:>14.3f}", flush=True)
        if args.torch_reference:
            seconds = torch_reference_seconds(batch_size, args.crop, args.critic_updates, args.runs)
            print(
                f"{'torch-gp':<10} {1:>7} {batch_size:>5} {seconds:>12.2f} {batch_size / seconds:>14.3f}  "
                "(plain PyTorch, same networks, WGAN-GP, L1)",
                flush=True,
            )
    if args.loader:
        from bench_data import measure_loader, write_photo_like_pairs

        with tempfile.TemporaryDirectory() as tmp:
            write_photo_like_pairs(Path(tmp), 12, 720, 1280)
            rate = measure_loader(Path(tmp), batch_size=1, crop_size=256, workers=2)
        print(f"data loader: {rate:.1f} images/s (256 crops from 1280x720 PNG pairs, 2 threads)")


def _each_device_count(args):
    """Runs this script once per device count, each in its own process (JAX reads XLA_FLAGS at
    import, TensorFlow sets its devices before it starts)."""
    argv = list(sys.argv[1:])
    at = argv.index("--devices")
    del argv[at : at + 2]
    for i, count in enumerate(args.devices.split(",")):
        env = dict(os.environ, _BENCH_TRAINING_HEADER="1" if i == 0 else "0")
        subprocess.run([sys.executable, __file__, *argv, "--devices", count], env=env, check=True)


if __name__ == "__main__":
    main()
