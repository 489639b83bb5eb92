"""Gathers natural photographs from packaged sources into a training folder and a validation split.

Sources: scikit-image, scikit-learn and matplotlib data, and the Debian packages
plasma-workspace-wallpapers, lomiri-wallpapers-16.04 and lomiri-wallpapers-20.04 (fetched with
`apt-get download` into a temporary folder; nothing is installed). See deblurgan/photos.py for
the reviewed list of photos and the layout of the output.

Example:
    python scripts/fetch_photos.py --output_dir photos
    python scripts/train.py --sharp_dir photos/train ...   # validate on photos/val
"""

import sys
import time

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import OneLineUsageErrors, main_guard
from deblurgan.photos import DEFAULT_MAX_SIDE, fetch_photos


@click.command(cls=OneLineUsageErrors)
@click.option("--output_dir", required=True, type=click.Path(), help="A new or empty folder.")
@click.option(
    "--max_side",
    default=DEFAULT_MAX_SIDE,
    show_default=True,
    type=click.IntRange(min=512),
    help="Downscale photos so that their longer side is at most this (px).",
)
@click.option(
    "--skip_debian",
    is_flag=True,
    help="Only the photos shipped in Python packages (offline; no apt-get download).",
)
@click.option(
    "--deb_dir",
    default=None,
    type=click.Path(),
    help="Folder holding the .deb files already (from `apt-get download`) instead of downloading them.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@main_guard
def main(output_dir, max_side, skip_debian, deb_dir, quiet):
    """Writes OUTPUT_DIR/train, OUTPUT_DIR/val_photos, OUTPUT_DIR/val/{A,B} and OUTPUT_DIR/manifest.csv."""
    start = time.perf_counter()
    rows = fetch_photos(
        output_dir, max_side=max_side, skip_debian=skip_debian, deb_dir=deb_dir, progress=not quiet
    )
    photos = [row for row in rows if row["split"] in ("train", "val")]
    for split in ("train", "val"):
        chosen = [row for row in photos if row["split"] == split]
        megapixels = sum(int(row["width"]) * int(row["height"]) for row in chosen) / 1e6
        print(f"{split}: {len(chosen)} photos, {megapixels:.1f} Mpx")
    pairs = sum(row["split"] == "val_pair" for row in rows) // 2
    print(
        f"wrote {output_dir}/train, {output_dir}/val_photos, {pairs} blurred/sharp pairs in "
        f"{output_dir}/val and {output_dir}/manifest.csv in {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
