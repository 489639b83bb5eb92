"""Library errors name parameters; the scripts show the flags that set them."""

import pytest

from deblurgan.cli import flag_message
from deblurgan.errors import DeblurGANError


@pytest.mark.parametrize(
    ("parameter", "message", "shown"),
    [
        ("batch_size", "batch_size=0: must be at least 1", "--batch_size 0: must be at least 1"),
        (
            "gradient_penalty_weight",
            "gradient_penalty_weight=-1: must be >= 0",
            "--gp_weight -1: must be >= 0",
        ),
        (None, "a.png: not an image; pass a PNG", "a.png: not an image; pass a PNG"),
    ],
)
def test_flag_message_names_the_flag_of_the_parameter(parameter, message, shown):
    assert flag_message(DeblurGANError(message, parameter=parameter)) == shown


def test_only_the_parameter_itself_is_renamed():
    error = DeblurGANError("crop_size=300: larger than the image; lower crop_size=", parameter="crop_size")
    assert flag_message(error) == "--crop_size 300: larger than the image; lower crop_size="
