"""Speed of the blur synthesis: kernels per second and 1280x720 images per second (CPU).

    python benchmarks/bench_blur.py [--repeats 20]

Prints one line per measurement: the median over --repeats runs after one warm-up run.
"""

import time

import click
import numpy as np

from deblurgan import blur


def median_seconds(function, repeats):
    function()  # warm-up (FFT plans, imports)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@click.command()
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(min=1),
              help="Timed runs per measurement.")
@click.option("--height", default=720, show_default=True, type=click.IntRange(min=1))
@click.option("--width", default=1280, show_default=True, type=click.IntRange(min=1))
def main(repeats, height, width):
    rng = np.random.default_rng(0)
    image = np.clip(rng.random((height, width, 3)), 0, 1).astype(np.float32)
    path = blur.trajectory(rng)
    full_psf = blur.psf_from_trajectory(path, exposure=1.0)
    linear = blur.linear_motion_kernel(15, 30)

    seconds = {
        "trajectory (2000 steps)": median_seconds(lambda: blur.trajectory(rng), repeats),
        "PSF from trajectory (exposure 1)": median_seconds(lambda: blur.psf_from_trajectory(path), repeats),
        "trajectory + 4 PSFs (random_psfs)": median_seconds(lambda: blur.random_psfs(rng), repeats),
        "linear motion kernel (15 px)": median_seconds(lambda: blur.linear_motion_kernel(15, 30), repeats),
    }
    for name, s in seconds.items():
        print(f"{name:44s} {1 / s:10.1f} per second  ({s * 1e3:.2f} ms)")
    images = {
        f"blur_image {width}x{height}, 64 px shake PSF": lambda: blur.blur_image(image, full_psf),
        f"blur_image {width}x{height}, 15 px linear": lambda: blur.blur_image(image, linear),
        f"random_blur {width}x{height} (kernel + blur)": lambda: blur.random_blur(image, rng),
        f"random_blur {width}x{height} + noise + JPEG": lambda: blur.random_blur(
            image, rng, noise_sigma=(0.005, 0.02), jpeg_quality=(60, 95)
        ),
    }
    for name, function in images.items():
        s = median_seconds(function, repeats)
        print(f"{name:44s} {1 / s:10.2f} images/s   ({s * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
