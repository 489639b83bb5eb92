"""Natural photographs from packaged sources: a training folder and a blurred validation split.

``fetch_photos`` gathers a reviewed list of photographs (:data:`PHOTOS`) from the data that ships
with scikit-image, scikit-learn and matplotlib, and from Debian wallpaper packages fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x`` into a temporary folder (nothing is
installed). Each entry was chosen by looking at the file: photographs only, no drawings, renders,
abstract art, microscopy, telescope or text images, and no near-duplicates. The photos of the
sample dataset's test and holdout splits (``images/test``, ``images/holdout``, ``images/demo``)
are never taken. ``ukui-wallpapers`` (20.04.3-1.1) and ``lomiri-wallpapers`` (20.04.0-2) were
reviewed too and hold no photograph (vector and 3-D art only), so they are not downloaded.

Output (``OUT``)::

    OUT/train/<source>__<name>.png     training photos (whole; longer side at most max_side)
    OUT/val_photos/<source>__<name>.png  validation photos, never in train/
    OUT/val/{A,B}/*.png, val/pairs.csv   512x512 crops of the validation photos, blurred (A)
                                         with fixed seeds as images/test was, and sharp (B)
    OUT/manifest.csv                   one row per file: source package and version, path in the
                                       package, licence as the package states it, SHA-256, size

Example::

    fetch_photos("photos")                     # downloads the Debian packages
    fetch_photos("photos", skip_debian=True)   # offline: Python-package photos only
"""

import csv
import dataclasses
import fnmatch
import hashlib
import importlib.metadata
import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tqdm import tqdm

from deblurgan.blur_dataset import downscale, make_blur_dataset
from deblurgan.errors import DeblurGANError
from deblurgan.io import atomic_path, read_image, write_image
from deblurgan.sample_data import SAMPLE_BLUR, SAMPLE_PHOTOS, sample_photo_path

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PackagedPhoto:
    """One reviewed photograph: where it ships, which split it feeds and what it shows."""

    package: str  # importable Python package ("skimage") or Debian package name
    resource: str  # path inside the Python package, or inside the .deb's file tree
    split: str  # "train" or "val"
    reason: str  # what the photo shows (why it was kept)
    licence: str | None = None  # Python packages: as their docs state it; Debian: read from copyright


@dataclasses.dataclass(frozen=True)
class DebianPackage:
    """A Debian package pinned by version and by the SHA-256 of its .deb (None: not checked)."""

    name: str
    version: str
    sha256: str | None


# Debian 12 (bookworm) versions, checked on 2026-11-22.
DEBIAN_PACKAGES = (
    DebianPackage(
        "plasma-workspace-wallpapers",
        "4:5.27.5-2",
        "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b",
    ),
    DebianPackage(
        "lomiri-wallpapers-16.04",
        "20.04.0-2",
        "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab",
    ),
    DebianPackage(
        "lomiri-wallpapers-20.04",
        "20.04.0-2",
        "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709",
    ),
)

_PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
_LOMIRI = "usr/share/backgrounds/{}.jpg"
_PL, _L16, _L20 = (p.name for p in DEBIAN_PACKAGES)

# The reviewed selection. Left out after looking: scikit-image's coffee, coins, chelsea and
# scikit-learn's flower (test/holdout/demo photos); cell, ihc, microaneurysms, retina (microscopy,
# medicine); moon, hubble_deep_field (telescope); text, page (text); horse, logo, chessboards,
# phantom, color (drawings, synthetic); clock_motion (blurred); motorcycle_right (stereo twin of
# motorcycle_left), motorcycle_left (no licence stated); matplotlib's logo2 and
# Minduka_Present_Blue_Pack (drawings); Plasma's Altai, Autumn, Canopee, Cascade, Cluster, Elarun,
# Flow, FlyingKonqui, Honeywave, IceCold, Kay, Kokkini, MilkyWay, Opal, PastelHills, Patak,
# SafeLanding, Shell, Volna (renders and abstract art), DarkestHour (fog, almost no detail), Kite
# (flat sky, the kite may be pasted in); Lomiri's analogpattern, umang, Fossa, Infinite-Sea,
# Painting-Colors (abstract or composite art).
# fmt: off
PHOTOS = (
    PackagedPhoto("skimage", "data/astronaut.png", "train", "portrait, flag, shuttle model",
                  "public domain (NASA; scikit-image docstring)"),
    PackagedPhoto("skimage", "data/camera.png", "train", "man with a camera on a lawn (gray)",
                  "CC0 (Lav Varshney; scikit-image docstring)"),
    PackagedPhoto("skimage", "data/rocket.jpg", "train", "rocket on the launch pad at dusk",
                  "public domain (SpaceX; scikit-image docstring)"),
    PackagedPhoto("skimage", "data/brick.png", "train", "brick wall (gray)",
                  "CC0 (CC0Textures; scikit-image docstring)"),
    PackagedPhoto("skimage", "data/grass.png", "train", "grass close-up (gray)",
                  "CC0 (linolafett, DeviantArt; scikit-image docstring)"),
    PackagedPhoto("skimage", "data/gravel.png", "train", "gravel close-up (gray)",
                  "CC0 (CC0Textures; scikit-image docstring)"),
    PackagedPhoto("sklearn", "datasets/images/china.jpg", "train", "pagoda, trees, lake",
                  "CC BY 2.0 (danielbuechele, Flickr; scikit-learn datasets/images/README.txt)"),
    PackagedPhoto("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "val", "portrait in uniform",
                  "not stated by matplotlib's sample_data/README.txt; US Navy official portrait"),
    PackagedPhoto(_PL, _PLASMA.format("BytheWater"), "train", "jetty on a lake at sunset"),
    PackagedPhoto(_PL, _PLASMA.format("ColdRipple"), "train", "pier in fog (near gray)"),
    PackagedPhoto(_PL, _PLASMA.format("ColorfulCups"), "train", "stacked plastic cups, close-up"),
    PackagedPhoto(_PL, _PLASMA.format("EveningGlow"), "val", "rowing boats on a shore at sunset"),
    PackagedPhoto(_PL, _PLASMA.format("FallenLeaf"), "train", "autumn leaf on the ground"),
    PackagedPhoto(_PL, _PLASMA.format("Grey"), "val", "curved facade, architecture (gray)"),
    PackagedPhoto(_PL, _PLASMA.format("OneStandsOut"), "train", "moss plants from above"),
    PackagedPhoto(_PL, _PLASMA.format("Path"), "train", "path through a pine forest"),
    PackagedPhoto(_PL, _PLASMA.format("summer_1am"), "train", "lake and reeds at dusk"),
    PackagedPhoto(_L16, _LOMIRI.format("Bridge_by_Sander_Klootwijk"), "train", "bridge cables, sky, beach"),
    PackagedPhoto(_L16, _LOMIRI.format("Dragonfly_by_Bolly"), "train", "leaves and twigs against the sky"),
    PackagedPhoto(_L16, _LOMIRI.format("Picture_0B_by_freespace"), "val", "fig in a red bowl on concrete"),
    PackagedPhoto(_L16, _LOMIRI.format("Picture_1A_by_freespace"), "train", "paint brushes, close-up"),
    PackagedPhoto(_L16, _LOMIRI.format("Wine_by_Jakkub_Mede"), "train", "room with drum, wine, speaker"),
    PackagedPhoto(_L16, _LOMIRI.format("aitzgorri_by_Aitzol_Berasategi"), "train", "meadow, autumn trees"),
    PackagedPhoto(_L16, _LOMIRI.format("free_by_Peter_Nerlich"), "train", "bird ornament under lamps"),
    PackagedPhoto(_L16, _LOMIRI.format("friends_by_Aitzol_Berasategi"), "val", "two dogs at a wooden door"),
    PackagedPhoto(_L16, _LOMIRI.format("greentock_by_Peter_Nerlich"), "train", "wall clock, close-up"),
    PackagedPhoto(_L16, _LOMIRI.format("life_by_Aitzol_Berasategi"), "train", "stream over rocks in a wood"),
    PackagedPhoto(_L16, _LOMIRI.format("picosdeeuropa_by_Aitzol_Berasategi"), "val", "mountains, path"),
    PackagedPhoto(_L16, _LOMIRI.format("seeding_by_Clements_Engelhardt"), "train", "dandelion clocks"),
    PackagedPhoto(_L16, _LOMIRI.format("sunset_by_Aitzol_Berasategi"), "train", "sun over a hilltop"),
    PackagedPhoto(_L20, _LOMIRI.format("Kleiber_by_Lukas_Baubkus"), "train", "nuthatch on a tree trunk"),
)
# fmt: on
SPLITS = ("train", "val")
PIP_NAMES = {"skimage": "scikit-image", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}

# Validation pairs: crops of this side, this many per photo, blurred as images/test was
# (sample_data.SAMPLE_BLUR) with this seed, so the figures compare with those of images/test.
VAL_CROP_SIZE = 512
VAL_CROPS_PER_PHOTO = 2
VAL_SEED = 10
DEFAULT_MAX_SIDE = 1600
MANIFEST_FIELDS = (
    "file", "split", "source_package", "package_version", "path_in_package", "licence", "reason",
    "width", "height", "sha256", "source_sha256",
)  # fmt: skip


def fetch_photos(
    output_dir,
    max_side=DEFAULT_MAX_SIDE,
    skip_debian=False,
    deb_dir=None,
    photos=PHOTOS,
    debian_packages=DEBIAN_PACKAGES,
    progress=True,
):
    """Writes the photos of ``photos`` into ``output_dir`` (see the module docstring for the layout).

    The folder appears complete or not at all: everything is written into a hidden folder beside
    it, which is renamed at the end.

    Args:
        output_dir: a new or empty folder.
        max_side: photos are downscaled so that their longer side is at most this (px).
        skip_debian: leave out the Debian packages' photos (no download; offline use).
        deb_dir: folder holding the .deb files already (``apt-get download`` them there);
            None downloads them with ``apt-get download`` into a temporary folder.
        photos: the selection (:data:`PHOTOS`).
        debian_packages: the pinned packages the selection's Debian photos come from.
        progress: show a tqdm progress bar.

    Returns:
        the manifest rows (dicts with :data:`MANIFEST_FIELDS`).

    Raises:
        DeblurGANError: a non-empty or unwritable output folder, a package that cannot be
            downloaded or does not match its pinned SHA-256, or a missing Python package.
    """
    output_dir = Path(output_dir)
    if deb_dir is not None:
        _check_deb_dir(Path(deb_dir), skip_debian)
    photos = [p for p in photos if not (skip_debian and p.package not in PIP_NAMES)]
    _check_selection(photos)
    staging = _make_staging(output_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="deblurgan_debs_") as work:
            sources = _locate_sources(photos, debian_packages, Path(work), deb_dir)
            rows = _write_photos(photos, sources, staging, max_side, progress)
        rows += _make_val_pairs(rows, staging, progress)
        _write_manifest(staging / "manifest.csv", rows)
        if output_dir.exists():
            output_dir.rmdir()
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d files to %s", len(rows), output_dir)
    return rows


def _check_deb_dir(deb_dir, skip_debian):
    if skip_debian:
        raise DeblurGANError(
            f"deb_dir={deb_dir}: unused with skip_debian=True; leave one out",
            parameter="deb_dir",
            mentions=("skip_debian",),
        )
    if not deb_dir.is_dir():
        raise DeblurGANError(
            f"deb_dir={deb_dir}: no such folder; `apt-get download` the packages into a folder and "
            "name that, or leave this out to download them",
            parameter="deb_dir",
        )


def _check_selection(photos):
    held_out = {(p.package, p.resource) for p in SAMPLE_PHOTOS if p.split != "train"}
    keys = [(p.package, p.resource) for p in photos]
    for photo, key in zip(photos, keys, strict=True):
        if key in held_out:
            raise DeblurGANError(f"{photo.resource}: a test/holdout photo of images/; remove it from photos")
        if keys.count(key) > 1:
            raise DeblurGANError(f"{photo.resource}: listed twice in photos; keep one entry")
        if photo.split not in SPLITS:
            raise DeblurGANError(f"{photo.resource}: split {photo.split!r}; use one of {SPLITS}")


def _make_staging(output_dir):
    if output_dir.exists() and not output_dir.is_dir():
        raise DeblurGANError(f"output_dir={output_dir}: is a file; pass a new or empty folder", "output_dir")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        raise DeblurGANError(
            f"output_dir={output_dir}: already holds files; pass a new or empty folder", "output_dir"
        )
    try:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would stay on the renamed output folder
        return staging
    except OSError as error:
        raise DeblurGANError(
            f"output_dir={output_dir}: cannot write there ({error.strerror}); pass a writable folder",
            "output_dir",
        ) from None


def _locate_sources(photos, debian_packages, work_dir, deb_dir):
    """(package, resource) -> (file, package version, licence) for every photo."""
    pinned = {package.name: package for package in debian_packages}
    sources = {}
    for name in dict.fromkeys(p.package for p in photos if p.package not in PIP_NAMES):
        if name not in pinned:
            raise DeblurGANError(f"{name}: not in debian_packages; pin its version there")
        tree, version = _unpack_deb(pinned[name], work_dir, deb_dir)
        copyright_text = _read_copyright(tree, name)
        for photo in (p for p in photos if p.package == name):
            path = tree / photo.resource
            if not path.is_file():
                raise DeblurGANError(f"{name} {version}: has no {photo.resource}; update PHOTOS")
            sources[photo.package, photo.resource] = (
                path,
                version,
                debian_licence(copyright_text, photo.resource),
            )
    for photo in (p for p in photos if p.package in PIP_NAMES):
        version = importlib.metadata.version(PIP_NAMES[photo.package])
        sources[photo.package, photo.resource] = (sample_photo_path(photo), version, photo.licence)
    return sources


def _unpack_deb(package, work_dir, deb_dir):
    """Downloads (or finds in ``deb_dir``) the package's .deb, checks it and unpacks it."""
    if deb_dir is None:
        download_dir = work_dir / "debs"
        download_dir.mkdir(exist_ok=True)
        _apt_get_download(package, download_dir)
    else:
        download_dir = Path(deb_dir)
    found = sorted(download_dir.glob(f"{package.name}_*.deb"))
    if not found:
        raise DeblurGANError(
            f"{'' if deb_dir is None else 'deb_dir='}{download_dir}: no {package.name}_*.deb; "
            f"run `apt-get download {package.name}={package.version}` there",
            parameter="deb_dir",
        )
    deb = found[-1]
    digest = _sha256(deb)
    if package.sha256 is not None and digest != package.sha256:
        raise DeblurGANError(
            f"{deb}: SHA-256 {digest[:12]}... is not the pinned {package.sha256[:12]}... of {package.name} "
            f"{package.version}; check the download, or update DEBIAN_PACKAGES after a review"
        )
    tree = work_dir / package.name
    _run(["dpkg-deb", "-x", str(deb), str(tree)], f"{deb}: cannot unpack")
    version = _run(["dpkg-deb", "-f", str(deb), "Version"], f"{deb}: cannot read").strip()
    return tree, version


_SKIP = ("skip_debian",)  # the parameter a missing apt-get or dpkg suggests


def _apt_get_download(package, download_dir):
    command = ["apt-get", "download", f"{package.name}={package.version}"]
    hint = "check the network and run `apt-get update`, or pass skip_debian=True (Python packages' photos)"
    try:
        result = subprocess.run(command, cwd=download_dir, capture_output=True, text=True)
    except OSError:
        message = f"{package.name}: apt-get not found (not Debian?); {hint}"
        raise DeblurGANError(message, mentions=_SKIP) from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no message"]
        raise DeblurGANError(
            f"{package.name}={package.version}: apt-get download failed ({lines[-1]}); {hint}", mentions=_SKIP
        )


def _run(command, what):
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError:
        raise DeblurGANError(
            f"{what}: {command[0]} not found; install dpkg or pass skip_debian=True", mentions=_SKIP
        ) from None
    if result.returncode != 0:
        raise DeblurGANError(f"{what} ({result.stderr.strip()[:200]}); download it again")
    return result.stdout


def _read_copyright(tree, name):
    path = tree / "usr/share/doc" / name / "copyright"
    if not path.is_file():
        raise DeblurGANError(
            f"{name}: the package has no usr/share/doc/{name}/copyright; cannot state a licence"
        )
    return path.read_text(encoding="utf-8", errors="replace")


def debian_licence(copyright_text, path):
    """The licence a machine-readable Debian copyright file states for ``path``.

    The last ``Files:`` paragraph that matches wins (as the format says). A pattern matches the
    path, a tail of it, or, without wildcards, its file name: packages often list files by their
    place in the source tree, not where they are installed.

    Returns:
        ``"<License> (<Copyright>)"``, e.g. ``"CC-BY-4.0 (Aitzol Berasategi, 2018)"``.
    """
    name = path.rsplit("/", 1)[-1]
    found = None
    for paragraph in re.split(r"\n[ \t]*\n", copyright_text):
        fields = _dep5_fields(paragraph)
        if "files" not in fields or "license" not in fields:
            continue
        for pattern in fields["files"].split():
            tail_match = fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, f"*/{pattern}")
            name_match = not any(c in pattern for c in "*?[") and pattern.rsplit("/", 1)[-1] == name
            if tail_match or name_match:
                holder = " ".join(fields.get("copyright", "").split())
                found = f"{fields['license'].splitlines()[0].strip()} ({holder})"
    if found is None:
        raise DeblurGANError(f"{path}: its package's copyright file states no licence for it; drop it")
    return found


def _dep5_fields(paragraph):
    fields, key = {}, None
    for line in paragraph.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_photos(photos, sources, staging, max_side, progress):
    rows = []
    for photo in tqdm(photos, desc="photos", unit="photo", disable=not progress):
        source, version, licence = sources[photo.package, photo.resource]
        folder = "train" if photo.split == "train" else "val_photos"
        stem = photo.resource.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if "/wallpapers/" in photo.resource:  # Plasma: <theme>/contents/images/<size>.jpg
            stem = photo.resource.split("/wallpapers/")[1].split("/")[0]
        relative = f"{folder}/{photo.package}__{stem}.png"
        decoded = read_image(source)
        pixels = downscale(decoded.pixels, max_side)
        write_image(staging / relative, pixels, grayscale=decoded.grayscale)
        rows.append(
            {
                "file": relative,
                "split": photo.split,
                "source_package": PIP_NAMES.get(photo.package, photo.package),
                "package_version": version,
                "path_in_package": photo.resource,
                "licence": licence,
                "reason": photo.reason,
                "width": pixels.shape[1],
                "height": pixels.shape[0],
                "sha256": _sha256(staging / relative),
                "source_sha256": _sha256(source),
            }
        )
    return rows


def _make_val_pairs(photo_rows, staging, progress):
    """512x512 blurred/sharp crops of the validation photos, as rows of the manifest."""
    val_rows = {Path(row["file"]).name: row for row in photo_rows if row["split"] == "val"}
    if not val_rows:
        return []
    for row in val_rows.values():
        if min(row["width"], row["height"]) < VAL_CROP_SIZE:
            raise DeblurGANError(
                f"{row['path_in_package']}: smaller than {VAL_CROP_SIZE} px; move it to train"
            )
    pairs = make_blur_dataset(
        staging / "val_photos",
        staging / "val",
        seed=VAL_SEED,
        blurs_per_image=VAL_CROPS_PER_PHOTO,
        crop_size=VAL_CROP_SIZE,
        progress=progress,
        **SAMPLE_BLUR,
    )
    rows = []
    for pair in pairs:
        source = val_rows[pair["source"]]
        for side, what in (("A", "blurred"), ("B", "sharp")):
            relative = f"val/{side}/{pair['name']}"
            rows.append(
                {
                    **source,
                    "file": relative,
                    "split": "val_pair",
                    "reason": f"{what} crop of {source['file']} (val/pairs.csv)",
                    "width": VAL_CROP_SIZE,
                    "height": VAL_CROP_SIZE,
                    "sha256": _sha256(staging / relative),
                }
            )
    return rows


def _write_manifest(path, rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue(), encoding="utf-8")
