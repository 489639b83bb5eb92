"""Overlapping tiles of a photo, deblurred band by band so that memory stays near one photo's.

The photo is reflect-padded (virtually: each tile gathers its own pixels) to a multiple of
``ALIGN``. Tiles are grouped in *row bands*; a band's tiles are blended across columns into a
band buffer, bands are cross-faded with their neighbours, and the rows that no later band touches
are written to the output as soon as the band is done. Tile windows start at non-decreasing rows,
so a finished row is never read again: the output may be the input array itself. Besides the
photo and the output, the working memory is two bands (about ``2 * tile * width * 12`` bytes) and
the batch of tiles in flight. See :mod:`deblurgan.inference` for why the blend is exact.
"""

import dataclasses

import numpy as np

from deblurgan.errors import DeblurGANError

ALIGN = 4  # two stride-2 downsamplings
MIN_SIDE = 8  # the residual blocks' reflection padding needs 2 pixels at quarter resolution


@dataclasses.dataclass
class Span:
    """One tile along one axis: the window fed to the generator and the core it owns."""

    start: int
    end: int
    core_start: int
    core_end: int


def padded_length(length):
    """The padded size of an axis of ``length`` pixels: a multiple of ``ALIGN``, at least ``MIN_SIDE``."""
    return max(-(-length // ALIGN) * ALIGN, MIN_SIDE)


def smallest_tile(overlap):
    """The tile side suggested when tiles leave no room inside their overlap: a 64-pixel core."""
    return 2 * overlap + 64


def spans(length, tile, overlap):
    """Tiles along an axis of ``length`` (a multiple of 4): equal windows of ``min(tile, length)``."""
    tile = min(tile, length)
    if tile == length:
        return [Span(0, length, 0, length)]
    core = tile - 2 * overlap
    if core < ALIGN:
        raise DeblurGANError(
            f"tile_size={tile} leaves no room inside an overlap of {overlap} pixels on each side; "
            f"use a tile_size of at least {smallest_tile(overlap)} or a smaller overlap",
            "tile_size",
        )
    units, core_units = length // ALIGN, core // ALIGN
    count = -(-units // core_units)
    borders = [ALIGN * (i * units // count) for i in range(count + 1)]
    result = []
    for core_start, core_end in zip(borders[:-1], borders[1:], strict=True):
        start = min(max(core_start - overlap, 0), length - tile)
        result.append(Span(start, start + tile, core_start, core_end))
    return result


def ramp_weights(span, length, half_width):
    """Per-pixel weight of a tile along one axis: 1 on its core, linear cross-fades at inner borders."""
    centres = np.arange(span.start, span.end, dtype=np.float64) + 0.5
    weight = np.ones_like(centres)
    for border, rising in ((span.core_start, True), (span.core_end, False)):
        if border in (0, length):
            continue  # the photo's edge: nothing to fade into
        if half_width == 0:
            step = centres >= border if rising else centres < border
            weight *= step
        else:
            t = (centres - (border - half_width)) / (2 * half_width)
            weight *= np.clip(t if rising else 1.0 - t, 0.0, 1.0)
    return weight.astype(np.float32)


def reflect_indices(start, end, length):
    """Rows ``start..end`` of an axis of ``length`` reflect-padded past its end, as ``np.pad``'s
    ``"reflect"`` mode (repeatedly, when the padding is wider than the axis)."""
    index = np.arange(start, end)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = index % period
    return np.where(index < length, index, period - index)


def read_window(image01, rows, cols):
    """The ``rows x cols`` window of the padded photo, in the networks' range [-1, 1] (a copy)."""
    height, width = image01.shape[:2]
    if rows.end <= height and cols.end <= width:
        window = image01[rows.start : rows.end, cols.start : cols.end]
    else:
        window = image01[
            np.ix_(
                reflect_indices(rows.start, rows.end, height), reflect_indices(cols.start, cols.end, width)
            )
        ]
    return np.asarray(window, dtype=np.float32) * 2.0 - 1.0


def deblur_tiled(predict, image01, out, tile, overlap, half_width, batch_size):
    """Deblurs ``image01`` (float, [0, 1]) tile by tile into ``out`` (float32, [0, 1]; may be ``image01``).

    ``predict`` maps a batch of windows in [-1, 1] to the generator's float32 outputs.
    """
    height, width = image01.shape[:2]
    padded_h, padded_w = padded_length(height), padded_length(width)
    rows, cols = spans(padded_h, tile, overlap), spans(padded_w, tile, overlap)
    cores = [span.core_end - span.core_start for span in rows + cols]
    half_width = max(0, min(half_width, min(cores) // 2))
    col_weights = [ramp_weights(c, padded_w, half_width) for c in cols]
    row_total, col_total = np.zeros(padded_h, np.float32), np.zeros(padded_w, np.float32)
    for r in rows:
        row_total[r.start : r.end] += ramp_weights(r, padded_h, half_width)
    for c, weight in zip(cols, col_weights, strict=True):
        col_total[c.start : c.end] += weight
    col_total = np.maximum(col_total[:width, None], 1e-12)

    band, band_top = np.zeros((0, padded_w, 3), np.float32), 0
    for r in rows:
        # rows above this band's window get nothing more: finish them and drop them from the buffer
        _finish_rows(band[: r.start - band_top], band_top, out, row_total, col_total)
        band = _slide(band, band_top, r)
        band_top = r.start
        row_weight = ramp_weights(r, padded_h, half_width)[:, None, None]
        for first in range(0, len(cols), batch_size):
            chunk = cols[first : first + batch_size]
            restored = predict(np.stack([read_window(image01, r, c) for c in chunk]))
            for c, weight, tile_out in zip(chunk, col_weights[first:], restored, strict=False):
                band[:, c.start : c.end] += tile_out * (row_weight * weight[None, :, None])
    _finish_rows(band, band_top, out, row_total, col_total)
    return out


def _slide(band, band_top, span):
    """The band buffer moved down to start at ``span.start`` and extended to ``span.end``."""
    kept = band[span.start - band_top :]
    grown = np.zeros((span.end - span.start, band.shape[1], 3), np.float32)
    grown[: kept.shape[0]] = kept
    return grown


def _finish_rows(rows, top, out, row_total, col_total):
    """Writes the blended ``rows`` (starting at photo row ``top``) to ``out`` in [0, 1]."""
    count = min(rows.shape[0], out.shape[0] - top)  # rows past the photo are padding
    if count <= 0:
        return
    denominator = np.maximum(row_total[top : top + count], 1e-12)[:, None, None] * col_total
    blended = np.divide(rows[:count, : out.shape[1]], denominator)  # the one temporary
    blended += 1.0
    blended *= 0.5
    out[top : top + count] = np.clip(blended, 0.0, 1.0, out=blended)
