"""Draws the README's before/after figure: blurred | deblurred | sharp, per demo photo.

Each row is a crop of one photo of images/demo (the blurred input), its deblurred version from
the given generator and the sharp original from images/demo_sharp, with the crop's PSNR against
the sharp original under the first two panels. Deblurring runs on the whole photo, then the same
crop is taken from all three. An existing ``--output`` (the README's own figure by default) is
replaced only with ``--overwrite``.

    python benchmarks/make_result_figure.py --weight_path weights/generator.h5 \
        --names chelsea_00.png,flower_00.png --output images/readme/deblur_example.png --overwrite
"""

from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from deblurgan.cli import main_guard, weight_path_option
from deblurgan.errors import DeblurGANError
from deblurgan.inference import deblur_array, load_inference_generator
from deblurgan.io import check_new_file, read_image, to_uint8, writable_folder, write_image
from deblurgan.metrics import psnr
from deblurgan.pairing import check_same_size

CAPTION_HEIGHT = 16


def centre_crop(image, size):
    top = max((image.shape[0] - size) // 2, 0)
    left = max((image.shape[1] - size) // 2, 0)
    return image[top : top + size, left : left + size]


def captioned(panel8, text):
    image = Image.new("RGB", (panel8.shape[1], panel8.shape[0] + CAPTION_HEIGHT), "white")
    image.paste(Image.fromarray(panel8), (0, 0))
    ImageDraw.Draw(image).text((4, panel8.shape[0] + 2), text, fill="black")
    return np.asarray(image)


def figure_row(generator, blurred, sharp, crop, gap):
    """One row of panels from a blurred photo and its sharp original (pixels in [0, 1])."""
    restored = deblur_array(generator, blurred)
    crops = [to_uint8(centre_crop(image, crop)) for image in (blurred, restored, sharp)]
    labels = [
        f"blurred  {psnr(crops[2], crops[0]):.2f} dB",
        f"deblurred  {psnr(crops[2], crops[1]):.2f} dB",
        "sharp",
    ]
    panels = [captioned(c, text) for c, text in zip(crops, labels, strict=True)]
    spacer = np.full((panels[0].shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([panels[0], spacer, panels[1], spacer, panels[2]], axis=1)


@click.command()
@weight_path_option
@click.option("--demo_dir", default="images/demo", show_default=True)
@click.option("--sharp_dir", default="images/demo_sharp", show_default=True)
@click.option("--names", default="chelsea_00.png,flower_00.png", show_default=True)
@click.option(
    "--crop",
    default=240,
    show_default=True,
    type=click.IntRange(min=8),
    help="Side of the centre crop shown.",
)
@click.option("--output", default="images/readme/deblur_example.png", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@main_guard
def main(weight_path, demo_dir, sharp_dir, names, crop, output, overwrite, gap=6):
    pairs = [(Path(demo_dir) / name, Path(sharp_dir) / name) for name in names.split(",") if name]
    if not pairs:
        raise DeblurGANError(f"names={names!r}: give photo names, e.g. chelsea_00.png,flower_00.png", "names")
    _check_output(Path(output), [path for pair in pairs for path in pair], overwrite)  # before the work
    photos = [tuple(read_image(path).pixels for path in pair) for pair in pairs]
    for (blurred, sharp), (blurred_path, sharp_path) in zip(photos, pairs, strict=True):
        # else the crops would come from two different pictures
        check_same_size(blurred_path, sharp_path, blurred.shape[:2], sharp.shape[:2])
    generator = load_inference_generator(weight_path)
    rows = [figure_row(generator, blurred, sharp, crop, gap) for blurred, sharp in tqdm(photos, desc="rows")]
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, gap), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    write_image(output, np.concatenate(rows, axis=0)[:-gap].astype(np.float32) / 255.0)
    print(f"wrote {output}")


def _check_output(output, inputs, overwrite):
    """The figure is a new PNG: never one of the photos it shows (it overwrote one before), nor
    another existing file unless ``overwrite``."""
    if any(output.resolve() == path.resolve() for path in inputs):
        raise DeblurGANError(
            f"output={output}: is one of the input photos; write the figure elsewhere", "output"
        )
    if output.suffix.lower() != ".png":
        raise DeblurGANError(f"output={output}: give a .png file", "output")
    check_new_file(output, overwrite)
    writable_folder(output.parent, "output", create=False)


if __name__ == "__main__":
    main()
