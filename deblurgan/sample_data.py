"""The embedded sample dataset (``images/``), rebuilt from photos that ship inside Python packages.

Every source photo is a freely redistributable file of scikit-image (``skimage/data``) or
scikit-learn (``sklearn/datasets/images``); ``images/README.md`` gives each one's origin and
licence. Photos are assigned to exactly one split, so no photo is seen in two of them:

- ``train``: several crops of each training photo, each with its own random blur;
- ``test`` and ``holdout``: a few pairs of other photos (``holdout`` is kept for checking that
  released weights generalise, never for choosing them);
- ``demo``: whole test/holdout photos, blurred, for the README and ``scripts/deblur.py``;
  ``demo_sharp`` holds their sharp versions under the same names.

Example::

    make_sample_dataset("images", seed=0, overwrite=True)  # what images/README.md runs
"""

import dataclasses
import filecmp
import importlib.util
import logging
import shutil
import tempfile
from pathlib import Path

from deblurgan.blur_dataset import BlurOptions, check_options, make_blur_dataset
from deblurgan.errors import DeblurGANError, check_seed, first_of
from deblurgan.io import list_images, writable_folder

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SamplePhoto:
    """One source photo: which split it belongs to and where it ships."""

    split: str
    package: str  # importable package that ships the file
    resource: str  # path inside the package
    licence: str


SAMPLE_PHOTOS = (
    SamplePhoto("train", "skimage", "data/astronaut.png", "public domain (NASA)"),
    SamplePhoto("train", "skimage", "data/rocket.jpg", "public domain (SpaceX)"),
    SamplePhoto("train", "sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)"),
    SamplePhoto("train", "skimage", "data/camera.png", "CC0 (Lav Varshney)"),
    SamplePhoto("train", "skimage", "data/ihc.png", "no known copyright restrictions (CMMI)"),
    SamplePhoto("train", "skimage", "data/brick.png", "CC0 (CC0Textures, via scikit-image)"),
    SamplePhoto("test", "skimage", "data/coffee.png", "CC0 (Rachel Michetti)"),
    SamplePhoto("test", "skimage", "data/coins.png", "no known copyright restrictions (Brooklyn Museum)"),
    SamplePhoto("holdout", "skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
    SamplePhoto("holdout", "sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)"),
)
SPLITS = ("train", "test", "holdout")
DEMO_SOURCES = ("coffee.png", "coins.png", "chelsea.png", "flower.jpg")

# Blur mix for the sample set: camera shakes at three exposures and some straight motions, so
# the blur strength varies (most pairs fall between 22 and 30 dB PSNR).
SAMPLE_BLUR = dict(exposures=(0.1, 0.5, 1.0), linear_probability=0.3, linear_length=(5.0, 17.0))


def sample_photo_path(photo):
    """Where ``photo`` lies in the installed package; DeblurGANError if the package is missing."""
    spec = importlib.util.find_spec(photo.package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(photo.package, photo.package)
        raise DeblurGANError(f"{photo.resource}: needs the {pip_name} package; pip install {pip_name}")
    path = Path(spec.submodule_search_locations[0]) / photo.resource
    if not path.is_file():
        raise DeblurGANError(f"{path}: missing from the installed {photo.package}; reinstall it")
    return path


def gather_sample_photos(folder, parameter="folder"):
    """Copies the source photos, unchanged, into ``folder/{train,test,holdout}/``; a file of the
    same name there is left alone (and named in an error) unless it is that photo already."""
    folder = writable_folder(folder, parameter)
    for photo in SAMPLE_PHOTOS:
        source = sample_photo_path(photo)
        target = folder / photo.split / source.name
        if target.exists() and not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
            raise DeblurGANError(
                f"{target}: exists and is not the sample photo {photo.resource}; choose another {parameter}",
                parameter,
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return folder


def make_sample_dataset(
    output_dir="images",
    seed=0,
    crop_size=256,
    train_blurs=8,
    eval_blurs=3,
    max_side=640,
    overwrite=False,
    progress=True,
):
    """Rebuilds ``output_dir/{train,test,holdout}/{A,B}``, ``demo/`` and ``demo_sharp/``.

    Args:
        output_dir: the dataset root (``images`` in the repository).
        seed: the builder's seed; the same seed and package versions give identical files.
        crop_size: side of the square crops of every pair.
        train_blurs: pairs per training photo.
        eval_blurs: pairs per test and holdout photo.
        max_side: photos are downscaled to this longer side before cropping.
        overwrite: replace existing split folders (otherwise refuse to mix old and new files).
        progress: show progress bars.

    Returns:
        dict split -> list of pair rows (see :func:`deblurgan.blur_dataset.make_blur_dataset`).
    """
    check_seed(seed)
    for name, blurs in (("train_blurs", train_blurs), ("eval_blurs", eval_blurs)):
        if blurs < 1:
            raise DeblurGANError(f"{name}={blurs}: use 1 or more", name)
    check_options(BlurOptions(crop_size=crop_size, max_side=max_side, **SAMPLE_BLUR))
    output_dir = writable_folder(output_dir, "output_dir")
    names = (*SPLITS, "demo", "demo_sharp")
    existing = [output_dir / name for name in names if (output_dir / name).exists()]
    if existing and not overwrite:
        message = f"{existing[0]}: already exists; pass overwrite=True to rebuild"
        raise DeblurGANError(message, mentions=["overwrite"])
    rows = {}
    # Built beside the old dataset (hidden, on the same file system), which is replaced only once
    # the new one is complete: a failure midway leaves it as it was.
    with tempfile.TemporaryDirectory(prefix=".deblurgan_sample_", dir=output_dir) as tmp:
        sources, built = gather_sample_photos(Path(tmp) / "sources"), Path(tmp) / "built"
        for split in SPLITS:
            rows[split] = make_blur_dataset(
                sources / split,
                built / split,
                seed=seed,
                blurs_per_image=train_blurs if split == "train" else eval_blurs,
                crop_size=crop_size,
                max_side=max_side,
                progress=progress,
                **SAMPLE_BLUR,
            )
        rows["demo"] = _make_demo(sources, Path(tmp) / "demo", built, seed, max_side, progress)
        _check_only_dataset_files(existing, output_dir, built)
        for target in existing:
            shutil.rmtree(target)
        for name in names:
            (built / name).rename(output_dir / name)
    return rows


def _check_only_dataset_files(folders, output_dir, built):
    """The folders ``overwrite`` replaces must hold nothing but the dataset's files: a user's notes
    or photos put there were deleted with them."""
    foreign = [
        path
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not (built / path.relative_to(output_dir)).is_file()
    ]
    if foreign:
        raise DeblurGANError(
            f"{first_of(foreign)}: not a file of the sample dataset, and overwrite=True replaces only "
            "those; move it out, or choose another output folder",
            mentions=("overwrite",),
        )


def _make_demo(sources, work_dir, output_dir, seed, max_side, progress):
    """Whole test/holdout photos, blurred clearly (long exposures, longer straight motions)."""
    demo_sources = work_dir / "sources"
    demo_sources.mkdir(parents=True)
    for split in ("test", "holdout"):
        for photo in list_images(sources / split):
            if photo.name in DEMO_SOURCES:
                shutil.copyfile(photo, demo_sources / photo.name)
    rows = make_blur_dataset(
        demo_sources,
        work_dir / "pairs",
        seed=seed + 1,
        max_side=max_side,
        progress=progress,
        exposures=(0.5, 1.0),
        linear_probability=0.3,
        linear_length=(9.0, 15.0),
    )
    for folder, name in (("A", "demo"), ("B", "demo_sharp")):
        shutil.copytree(work_dir / "pairs" / folder, output_dir / name)
    shutil.copyfile(work_dir / "pairs" / "pairs.csv", output_dir / "demo" / "pairs.csv")
    return rows
