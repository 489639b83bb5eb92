"""The one pairing rule of training and evaluation: ``A/<name>`` (blurred) with ``B/<name>`` (sharp).

Files pair by their path relative to ``A/`` and ``B/`` without the extension (subfolders allowed),
so ``A/x.jpg`` pairs with ``B/x.png``. Two files of one side with the same name but different
extensions (``a.png`` and ``a.jpg``) are ambiguous and an error.
"""

import logging
from pathlib import Path

from deblurgan.errors import DeblurGANError
from deblurgan.io import IMAGE_EXTENSIONS, list_images

logger = logging.getLogger(__name__)

LAYOUT_HINT = "expected {root}/A (blurred) and {root}/B (sharp) holding images with the same relative names"
UNMATCHED = ("error", "warn")
_MAX_LISTED = 5


def _keyed_images(folder, hint):
    """``{relative path without extension: path}`` of the images under ``folder``."""
    files = list_images(folder)
    if not files:
        raise DeblurGANError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}); {hint}")
    keyed = {}
    for path in files:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in keyed:
            raise DeblurGANError(
                f"{keyed[key]} and {path}: two images with the same name; pairing ignores extensions, "
                "so rename or remove one of them"
            )
        keyed[key] = path
    return keyed


def find_pairs(data_dir):
    """Matches ``data_dir/A`` with ``data_dir/B`` by relative name without extension.

    Returns ``(pairs, unmatched)``: ``(name, blurred_path, sharp_path)`` sorted by name (the ``A/``
    file's relative path), and the files without a partner as ``"A/x.png (no B/ partner)"``.
    Raises DeblurGANError when a folder is missing or empty, or a name is ambiguous.
    """
    root = Path(data_dir)
    hint = LAYOUT_HINT.format(root=root)
    if not root.is_dir():
        what = "a file, not a data folder" if root.is_file() else "no such data folder"
        raise DeblurGANError(f"{root}: {what}; {hint}")
    for side in ("A", "B"):
        if not (root / side).is_dir():
            raise DeblurGANError(f"{root / side}: missing {side}/ folder; {hint}")
    blurred, sharp = (_keyed_images(root / side, hint) for side in ("A", "B"))
    pairs = [
        (blurred[key].relative_to(root / "A").as_posix(), blurred[key], sharp[key])
        for key in sorted(blurred.keys() & sharp.keys())
    ]
    unmatched = sorted(
        f"{side}/{files[k].relative_to(root / side).as_posix()} (no {other}/ partner)"
        for side, other, files, others in (("A", "B", blurred, sharp), ("B", "A", sharp, blurred))
        for k in files.keys() - others.keys()
    )
    return pairs, unmatched


def pair_images(data_dir, unmatched="error"):
    """Pairs ``data_dir/A/<name>`` (blurred) with ``data_dir/B/<name>`` (sharp), the rule above.

    Args:
        data_dir: folder holding ``A/`` and ``B/``.
        unmatched: what a file without a partner does: ``"error"`` (DeblurGANError listing them) or
            ``"warn"`` (logged and left out).

    Returns:
        ``(blurred_path, sharp_path)`` tuples of :class:`pathlib.Path`, sorted by name.

    Example:
        >>> pairs = pair_images("images/train")   # doctest: +SKIP
        >>> pairs[0]                              # doctest: +SKIP
        (PosixPath('images/train/A/0001.png'), PosixPath('images/train/B/0001.png'))
    """
    if unmatched not in UNMATCHED:
        raise DeblurGANError(f"unmatched={unmatched!r}: choose one of {', '.join(UNMATCHED)}", "unmatched")
    root = Path(data_dir)
    pairs, lonely = find_pairs(root)
    if lonely and unmatched == "error":
        listed = ", ".join(lonely[:_MAX_LISTED])
        more = f" and {len(lonely) - _MAX_LISTED} more" if len(lonely) > _MAX_LISTED else ""
        raise DeblurGANError(
            f"{root}: {len(lonely)} images have no partner (names must match, extension aside): "
            f"{listed}{more}; {LAYOUT_HINT.format(root=root)}"
        )
    for name in lonely:
        logger.warning("%s: left out, %s", root, name)
    if not pairs:
        raise DeblurGANError(f"{root}: no A/ and B/ images share a name; {LAYOUT_HINT.format(root=root)}")
    return [(blurred, sharp) for _, blurred, sharp in pairs]


def check_sharp_only(folder, photos, parameter):
    """Raises if ``photos`` (images found under ``folder``) include the ``A/`` side of a paired
    dataset (``A/`` beside ``B/``), ``folder`` itself or one above it included: its blurred images
    would be taken for sharp photos."""
    for parent in sorted({path.parent.resolve() for path in photos}):
        for ancestor in (parent, *parent.parents):
            if ancestor.name == "A" and (ancestor.parent / "B").is_dir():
                raise DeblurGANError(
                    f"{parameter}={folder}: holds or lies in the paired dataset {ancestor.parent} "
                    "(A/ blurred, B/ sharp), whose blurred images would be taken for sharp photos; pass "
                    "a folder of sharp photos only (of scripts/fetch_photos.py's output: PHOTOS/train)",
                    parameter,
                )


def check_same_size(blurred_path, sharp_path, blurred_size, sharp_size):
    """Raises unless a blurred/sharp pair has one ``(height, width)``."""
    if blurred_size != sharp_size:
        raise DeblurGANError(
            f"{blurred_path} is {blurred_size[1]}x{blurred_size[0]} but {sharp_path} is "
            f"{sharp_size[1]}x{sharp_size[0]} (width x height); a blurred/sharp pair must have the "
            "same size: re-export one of them"
        )
