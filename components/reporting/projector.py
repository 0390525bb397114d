"""Writes embeddings, labels and a sprite image for TensorBoard's Embedding Projector."""

import os

import numpy as np
from PIL import Image

MAX_SPRITE_SIZE = 8192  # TensorBoard's limit for the sprite's side.
THUMBNAIL = 28


def sprite(images: np.ndarray, thumbnail: int = THUMBNAIL) -> Image.Image:
    """A square grid of thumbnails in row-major order, one per embedding."""
    count = len(images)
    side = int(np.ceil(np.sqrt(count)))
    grid = Image.new("RGB", (side * thumbnail, side * thumbnail), "white")
    for i, image in enumerate(images):
        pixels = np.asarray(image, dtype=np.float32).squeeze()
        low, high = float(pixels.min()), float(pixels.max())
        pixels = np.uint8(255 * (pixels - low) / max(high - low, 1e-6))
        tile = Image.fromarray(pixels).convert("RGB").resize((thumbnail, thumbnail))
        grid.paste(tile, ((i % side) * thumbnail, (i // side) * thumbnail))
    return grid


def write_projector(directory: str, embeddings, labels, images=None) -> list[str]:
    """vectors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt in `directory`."""
    os.makedirs(directory, exist_ok=True)
    embeddings = np.asarray(embeddings)
    max_count = (MAX_SPRITE_SIZE // THUMBNAIL) ** 2
    if len(embeddings) > max_count:
        raise ValueError(f"at most {max_count} embeddings fit one sprite, got {len(embeddings)}")
    np.savetxt(os.path.join(directory, "vectors.tsv"), embeddings, delimiter="\t", fmt="%.6f")
    with open(os.path.join(directory, "metadata.tsv"), "w") as f:
        f.writelines(f"{label}\n" for label in labels)
    config = [
        "embeddings {",
        '  tensor_path: "vectors.tsv"',
        '  metadata_path: "metadata.tsv"',
    ]
    written = ["vectors.tsv", "metadata.tsv", "projector_config.pbtxt"]
    if images is not None:
        sprite(images).save(os.path.join(directory, "sprite.png"))
        config += [
            "  sprite {",
            '    image_path: "sprite.png"',
            f"    single_image_dim: {THUMBNAIL}",
            f"    single_image_dim: {THUMBNAIL}",
            "  }",
        ]
        written.append("sprite.png")
    with open(os.path.join(directory, "projector_config.pbtxt"), "w") as f:
        f.write("\n".join([*config, "}"]) + "\n")
    return [os.path.join(directory, name) for name in written]
