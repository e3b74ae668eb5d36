"""Reading images (and later video frames) safely."""

from posekit.media.image import (
    IMAGE_EXTENSIONS,
    ImageError,
    find_images,
    image_size,
    load_image,
)

__all__ = ["IMAGE_EXTENSIONS", "ImageError", "find_images", "image_size", "load_image"]
