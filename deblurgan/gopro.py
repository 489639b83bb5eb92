"""Rearranging the GOPRO_Large dataset into the ``{train,test}/{A,B}`` layout that training reads."""

import os
import shutil
from pathlib import Path

from deblurgan.errors import DeblurGANError
from deblurgan.io import IMAGE_EXTENSIONS, atomic_path

_MAX_LISTED = 5

_GOPRO_LAYOUT = "expected {root}/{{train,test}}/<scene>/{{blur,blur_gamma,sharp}}/<frame>.png (GOPRO_Large)"


def _frames(folder):
    return {
        p.name: p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.name[0] != "."
    }


def _gopro_jobs(dir_in, blur_key):
    """Lists ``(source, target_relative_path)`` for every frame, checking the layout first."""
    layout = _GOPRO_LAYOUT.format(root=dir_in)
    if not dir_in.is_dir():
        raise DeblurGANError(f"{dir_in}: no such folder; {layout}")
    splits = [split for split in ("train", "test") if (dir_in / split).is_dir()]
    if not splits:
        if (dir_in / blur_key).is_dir():  # GOPRO_Large/train/SCENE
            raise DeblurGANError(
                f"{dir_in}: a scene folder, not GOPRO_Large itself; pass the folder two levels up "
                f"({dir_in.parent.parent}) as dir_in ({layout})"
            )
        if any((p / blur_key).is_dir() for p in dir_in.iterdir() if p.is_dir()):  # GOPRO_Large/train
            raise DeblurGANError(
                f"{dir_in}: a split folder, not GOPRO_Large itself; pass its parent ({dir_in.parent}) "
                f"as dir_in ({layout})"
            )
        raise DeblurGANError(f"{dir_in}: no train/ or test/ folder; {layout}")
    jobs = {}
    for split in splits:
        scenes = sorted(p for p in (dir_in / split).iterdir() if p.is_dir())
        if not scenes:
            raise DeblurGANError(f"{dir_in / split}: no scene folders; {layout}")
        split_jobs = []
        for scene in scenes:
            blur_dir, sharp_dir = scene / blur_key, scene / "sharp"
            for folder in (blur_dir, sharp_dir):
                if not folder.is_dir():
                    raise DeblurGANError(f"{folder}: missing; {layout}")
            blurred, sharp = _frames(blur_dir), _frames(sharp_dir)
            unmatched = sorted(set(blurred) ^ set(sharp))
            if unmatched:
                listed = ", ".join(unmatched[:_MAX_LISTED])
                raise DeblurGANError(
                    f"{scene}: {len(unmatched)} frames are not in both {blur_key}/ and sharp/ ({listed}); "
                    "re-extract this scene from the GOPRO archive"
                )
            for frame in sorted(blurred):
                name = f"{scene.name}_{frame}"
                split_jobs.append((blurred[frame], Path(split, "A", name)))
                split_jobs.append((sharp[frame], Path(split, "B", name)))
        jobs[split] = split_jobs
    return jobs


def _place_file(source, target, link):
    """Copies (or hard-links) ``source`` to ``target`` atomically; never touches ``source``."""
    with atomic_path(target) as tmp:
        if link:
            try:
                os.link(source, tmp)
            except OSError as error:
                raise DeblurGANError(
                    f"link=True cannot hard-link {source} into {target.parent} ({error.strerror}); it needs "
                    "dir_out on the same filesystem as dir_in; copy instead (link=False)",
                    "link",
                ) from None
        else:
            shutil.copyfile(source, tmp)


def organize_gopro(dir_in, dir_out, blur_key="blur", link=False, progress=True):
    """Rearranges GOPRO_Large into ``dir_out/{train,test}/{A,B}/<scene>_<frame>.png``.

    ``A`` gets the frames of ``blur_key`` (``blur``, or ``blur_gamma`` for the gamma-corrected
    blur), ``B`` the sharp frames. Names are prefixed with the scene so they are unique across
    scenes. Inputs are never modified; existing outputs with the same names are replaced.

    Args:
        dir_in: the extracted GOPRO_Large folder.
        dir_out: destination folder (created).
        blur_key: ``"blur"`` or ``"blur_gamma"``.
        link: hard-link instead of copying (same filesystem only; saves the disk space).
        progress: show a tqdm bar.

    Returns:
        dict split -> number of pairs written.

    Example:
        >>> organize_gopro("GOPRO_Large", "images/gopro")   # doctest: +SKIP
        {'train': 2103, 'test': 1111}
    """
    from tqdm import tqdm

    if blur_key not in ("blur", "blur_gamma"):
        raise DeblurGANError(f"blur_key={blur_key!r}: choose blur or blur_gamma", "blur_key")
    dir_in, dir_out = Path(dir_in), Path(dir_out)
    if dir_in.is_dir() and dir_out.resolve().is_relative_to(dir_in.resolve()):
        raise DeblurGANError(f"dir_out={dir_out}: inside the input {dir_in}; choose another", "dir_out")
    jobs = _gopro_jobs(dir_in, blur_key)
    files = [job for split_jobs in jobs.values() for job in split_jobs]
    for source, relative in tqdm(files, desc="organizing GOPRO", unit="file", disable=not progress):
        _place_file(source, dir_out / relative, link)
    return {split: len(split_jobs) // 2 for split, split_jobs in jobs.items()}
