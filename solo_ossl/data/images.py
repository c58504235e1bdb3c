"""Image files decoded for training: RGB, resized and center-cropped to ``data.load_size``, as uint8 CHW tensors
(image folders, shards and a live folder all decode here)."""

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from solo_ossl.utils.errors import SoloOsslError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def load_image(source, load_size: int) -> torch.Tensor:
    """An image file (a path or a file object) as a uint8 CHW tensor: RGB, resized (shorter side) and center-cropped
    to ``load_size``. Raises OSError or UnidentifiedImageError where it cannot be decoded."""
    with Image.open(source) as img:
        img = img.convert("RGB")
        scale = load_size / min(img.size)
        w, h = max(load_size, round(img.width * scale)), max(load_size, round(img.height * scale))
        img = img.resize((w, h), Image.BILINEAR)
        left, top = (w - load_size) // 2, (h - load_size) // 2
        img = img.crop((left, top, left + load_size, top + load_size))
        array = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def stack_images(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """Decoded images as one uint8 batch; an empty batch (every image unreadable) keeps the image shape."""
    return torch.stack(images) if images else torch.empty((0, 3, size, size), dtype=torch.uint8)


def decode_or_skip(source, load_size: int, where: str, skip: bool) -> torch.Tensor | None:
    """``load_image``; an unreadable image stops the run with an error naming ``where`` (the file, or the shard and
    key), or with ``skip`` (``data.on_bad_image=skip``) is reported once and left out (None)."""
    try:
        return load_image(source, load_size)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        if not skip:
            raise SoloOsslError(
                f"cannot decode image {where}: {e}; remove or replace the file, or pass ++data.on_bad_image=skip"
            ) from e
        print(f"warning: skipped the unreadable image {where} ({e})", flush=True)
        return None
