"""Rearranging the GOPRO_Large dataset into the ``{train,test}/{A,B}`` layout that training reads."""

import os
import shutil
from pathlib import Path

from deblurgan.errors import DeblurGANError
from deblurgan.io import IMAGE_EXTENSIONS, atomic_path, writable_folder

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
            root = dir_in.resolve().parent.parent
            raise DeblurGANError(
                f"{dir_in}: a scene folder, not GOPRO_Large itself; pass the folder two levels up "
                f"({root}) as dir_in ({_GOPRO_LAYOUT.format(root=root)})"
            )
        if any((p / blur_key).is_dir() for p in dir_in.iterdir() if p.is_dir()):  # GOPRO_Large/train
            root = dir_in.resolve().parent
            raise DeblurGANError(
                f"{dir_in}: a split folder, not GOPRO_Large itself; pass its parent ({root}) "
                f"as dir_in ({_GOPRO_LAYOUT.format(root=root)})"
            )
        raise DeblurGANError(f"{dir_in}: no train/ or test/ folder; {layout}")
    jobs = {}
    for split in splits:
        scenes = sorted(p for p in (dir_in / split).iterdir() if p.is_dir() and p.name[0] != ".")
        if not scenes:
            raise DeblurGANError(f"{dir_in / split}: no scene folders; {layout}")
        split_jobs, sources = [], {}
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
                if name in sources:  # scene a_b, frame c.png and scene a, frame b_c.png
                    raise DeblurGANError(
                        f"{blurred[frame]} and {sources[name]} would both become {split}/A/{name}; "
                        "rename one of the scene folders"
                    )
                sources[name] = blurred[frame]
                split_jobs.append((blurred[frame], Path(split, "A", name)))
                split_jobs.append((sharp[frame], Path(split, "B", name)))
        jobs[split] = split_jobs
    return jobs


def _check_no_other_files(dir_out, relatives):
    """Refuses files in ``dir_out``'s output folders other than ``relatives`` (this run's)."""
    for folder in sorted({relative.parent for relative in relatives}):
        if not (dir_out / folder).is_dir():
            continue
        others = sorted(set(_frames(dir_out / folder)) - {r.name for r in relatives if r.parent == folder})
        if others:
            raise DeblurGANError(
                f"dir_out={dir_out}: {folder} holds {len(others)} files this run does not write "
                f"(e.g. {others[0]}), which would mix with its pairs; choose an empty folder",
                "dir_out",
            )


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
    scenes. Inputs are never modified. A rerun replaces its own outputs (an interrupted copy
    completes); other files in ``dir_out``'s ``A``/``B`` folders are refused, since an earlier
    run's pairs would mix with these.

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
    _check_no_other_files(writable_folder(dir_out, "dir_out"), {relative for _, relative in files})
    for source, relative in tqdm(files, desc="organizing GOPRO", unit="file", disable=not progress):
        _place_file(source, dir_out / relative, link)
    return {split: len(split_jobs) // 2 for split, split_jobs in jobs.items()}
