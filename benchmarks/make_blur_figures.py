"""Draws the README's blur figures into images/readme/ (deterministic for a seed).

- blur_example.png: sharp | blurred | kernel, for a holdout photo and a camera-shake PSF;
- kernels.png: camera-shake PSFs of four trajectories (rows) at exposures 1/100, 1/10, 1/2, 1
  (columns), then four straight motions.

Kernels are shown stretched to their maximum (display only; the kernels themselves sum to 1).

    python benchmarks/make_blur_figures.py --output_dir images/readme
"""

from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw

from deblurgan import blur
from deblurgan.io import read_image, write_image
from deblurgan.sample_data import SAMPLE_PHOTOS, sample_photo_path


def kernel_tile(kernel, size):
    """A kernel as an RGB tile: white on black, stretched to its maximum, nearest-neighbour zoom."""
    shown = np.asarray(kernel, np.float64) / kernel.max()
    tile = Image.fromarray(np.round(shown * 255).astype(np.uint8), mode="L")
    tile = tile.resize((size, size), Image.Resampling.NEAREST)
    return np.repeat(np.asarray(tile, np.float32)[..., None] / 255.0, 3, axis=-1)


def example_figure(seed, exposure=1.0, gap=6):
    photo = next(p for p in SAMPLE_PHOTOS if p.resource.endswith("chelsea.png"))
    sharp = read_image(sample_photo_path(photo)).pixels
    rng = np.random.default_rng(seed)
    kernel = blur.psf_from_trajectory(blur.trajectory(rng), exposure=exposure)
    blurred = blur.blur_image(sharp, kernel)
    height = sharp.shape[0]
    panels = [sharp, blurred, kernel_tile(kernel, height)]
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    canvas = np.ones((height, width, 3), np.float32)
    x = 0
    for panel in panels:
        canvas[:, x : x + panel.shape[1]] = panel
        x += panel.shape[1] + gap
    return canvas


def kernels_figure(seed, tile=96, gap=4):
    rng = np.random.default_rng(seed)
    rows = [blur.random_psfs(rng) for _ in range(4)]
    rows.append([blur.linear_motion_kernel(length, angle, size=63) for length, angle in
                 [(5, 0), (15, 30), (30, 100), (50, 145)]])
    n_rows, n_cols = len(rows), len(rows[0])
    canvas = np.ones((n_rows * (tile + gap) - gap, n_cols * (tile + gap) - gap, 3), np.float32)
    for r, row in enumerate(rows):
        for c, kernel in enumerate(row):
            canvas[r * (tile + gap) : r * (tile + gap) + tile, c * (tile + gap) : c * (tile + gap) + tile] = (
                kernel_tile(kernel, tile)
            )
    return canvas


def labelled(canvas, text):
    """Adds a one-line caption strip above the figure."""
    image = Image.fromarray(np.round(canvas * 255).astype(np.uint8))
    out = Image.new("RGB", (image.width, image.height + 18), "white")
    out.paste(image, (0, 18))
    ImageDraw.Draw(out).text((4, 3), text, fill="black")
    return np.asarray(out, np.float32) / 255.0


@click.command()
@click.option("--output_dir", default="images/readme", show_default=True, type=click.Path())
@click.option("--seed", default=4, show_default=True)
def main(output_dir, seed):
    output_dir = Path(output_dir)
    caption = "sharp | blurred (camera shake, full exposure) | kernel (zoomed)"
    write_image(output_dir / "blur_example.png", labelled(example_figure(seed), caption))
    write_image(output_dir / "kernels.png",
                labelled(kernels_figure(seed), "exposure 1/100, 1/10, 1/2, 1; last row: straight motions"))
    print(f"wrote {output_dir}/blur_example.png and {output_dir}/kernels.png")


if __name__ == "__main__":
    main()
