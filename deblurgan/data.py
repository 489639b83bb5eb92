"""Former home of the data code, kept so that ``from deblurgan.data import ...`` keeps working.

Pairing lives in :mod:`deblurgan.pairing`, the streaming datasets in :mod:`deblurgan.datasets`, the
GOPRO_Large organiser in :mod:`deblurgan.gopro` and the Sicara ``load_images`` in :mod:`deblurgan.utils`.
"""

from deblurgan.datasets import PairedImageDataset, SharpPhotoDataset, StreamingDataset  # noqa: F401
from deblurgan.gopro import organize_gopro  # noqa: F401
from deblurgan.io import image_size, resize_image  # noqa: F401
from deblurgan.pairing import find_pairs, pair_images  # noqa: F401
from deblurgan.utils import load_images  # noqa: F401
