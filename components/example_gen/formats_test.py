"""Identity folders in every common image format, odd folder names, and the Yale faces."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.example_gen import executor, images, readers, sources
from components.example_gen.readers_test import decoded, run_to_list, save_image
from components.transform import preprocessing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
YALE_FACES = os.path.join(REPO, "..", "shared", "datasets", "yalefaces")  # Never copied in.


def stored(example: tf.train.Example) -> bytes:
    return example.features.feature["image"].bytes_list.value[0]


def test_every_common_format_is_read_and_made_png_without_changing_a_pixel(tmp_path):
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    deep = (rng.integers(0, 65536, (5, 4))).astype(np.uint16)
    bits = rng.integers(0, 2, (8, 8)).astype(bool)
    # file name -> (PIL save arguments, pixels expected back from the stored PNG)
    cases = {
        "a.gif": (Image.fromarray(grey), {}, grey),
        "b.pgm": (Image.fromarray(grey), {}, grey),
        "c.ppm": (Image.fromarray(rgb), {}, rgb),
        "d.pnm": (Image.fromarray(rgb), {"format": "PPM"}, rgb),
        "e.bmp": (Image.fromarray(rgb), {}, rgb),
        "f.tiff": (Image.fromarray(rgb), {}, rgb),
        "g.tif": (Image.fromarray(deep), {}, deep),
        "h.webp": (Image.fromarray(rgb), {"lossless": True}, rgb),
        "i.pgm": (Image.fromarray(deep), {}, deep),  # 16-bit PGM: PIL opens it as 32-bit "I".
        "j.pbm": (Image.fromarray(bits), {}, bits.astype(np.uint8) * 255),
    }
    for name, (image, options, _) in cases.items():
        path = tmp_path / "someone" / name
        path.parent.mkdir(exist_ok=True)
        image.save(path, **options)
    paths = readers.identity_images(tf.io.gfile.glob(str(tmp_path / "*" / "*")))
    assert len(paths) == len(cases)
    for path in paths:
        example = readers.image_file_to_example(path)
        data = stored(example)
        assert data.startswith(images.PNG_MAGIC), path
        pixels, label = decoded(example)
        assert label == "someone"
        np.testing.assert_array_equal(pixels, cases[os.path.basename(path)][2], err_msg=path)


def test_png_and_jpeg_bytes_are_kept_and_colour_palettes_stay_colour(tmp_path):
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    save_image(tmp_path / "x" / "a.jpg", rgb, "JPEG")
    jpeg = (tmp_path / "x" / "a.jpg").read_bytes()
    assert stored(readers.image_file_to_example(str(tmp_path / "x" / "a.jpg"))) == jpeg
    palette = Image.fromarray(rgb).quantize(16)
    palette.save(tmp_path / "x" / "p.gif")
    pixels, _ = decoded(readers.image_file_to_example(str(tmp_path / "x" / "p.gif")))
    np.testing.assert_array_equal(pixels, np.asarray(palette.convert("RGB")))


def test_animated_gif_keeps_its_first_frame(tmp_path):
    first = np.full((6, 6), 10, np.uint8)
    second = np.full((6, 6), 200, np.uint8)
    path = tmp_path / "x" / "moving.gif"
    path.parent.mkdir()
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)])
    assert Image.open(path).n_frames == 2
    pixels, _ = decoded(readers.image_file_to_example(str(path)))
    np.testing.assert_array_equal(pixels, first)


def test_sixteen_bit_png_decodes_to_eight_bit_scale_in_transform():
    deep = np.array([[0, 257 * 128, 65535]], np.uint16)
    data = images.transcode_to_png("x.tif", _encoded(Image.fromarray(deep), "TIFF"))
    pixels = preprocessing.decode_images(tf.constant([data]), 3, 1).numpy()
    # Resizing 1x3 to 3x3 keeps the columns; values scale to [0, 1] by their 16-bit range.
    np.testing.assert_allclose(pixels[0, 0, :, 0], [0.0, 128 / 255, 1.0], atol=1 / 255)


def test_floating_point_pixels_are_refused_by_name():
    data = _encoded(Image.fromarray(np.zeros((3, 3), np.float32)), "TIFF")
    with pytest.raises(images.ImageFileError, match="depth.tif: floating-point pixels"):
        images.example_image_bytes("depth.tif", data)


def _encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def test_identity_folder_not_named_in_utf8_is_an_error_naming_it(tmp_path):
    root = os.fsencode(tmp_path)
    os.makedirs(os.path.join(root, b"caf\xe9"))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(os.path.join(root, b"caf\xe9", b"a.png"))
    save_image(tmp_path / "fine" / "b.png", np.zeros((4, 4), np.uint8), "PNG")
    with pytest.raises(sources.DatasetError, match=r"caf\\xe9.*not valid UTF-8"):
        sources.detect_format(str(tmp_path))
    with pytest.raises(sources.DatasetError, match=r"caf\\xe9'.*not valid UTF-8.*rename"):
        with sources.utf8_names(str(tmp_path)):
            tf.io.gfile.glob(str(tmp_path / "*" / "*"))


@pytest.mark.skipif(not os.path.isdir(YALE_FACES), reason="../shared/datasets/yalefaces absent")
def test_yale_faces_gifs_are_read(tmp_path):
    assert sources.detect_format(YALE_FACES) == sources.FOLDER
    paths = readers.identity_images(tf.io.gfile.glob(os.path.join(YALE_FACES, "*", "*")))
    assert len(paths) >= 150
    examples = run_to_list(readers.ReadIdentityFolders(paths), tmp_path)
    assert len(examples) == len(paths)
    identities = {decoded(e)[1] for e in examples}
    assert len(identities) == 15 and all(i.startswith("subject") for i in identities)
    pixels, _ = decoded(examples[0])
    assert pixels.shape == (243, 320) and pixels.dtype == np.uint8  # Grey GIF -> grey PNG.


def test_too_few_eval_identities_are_refused():
    executor.check_eval_identities([(b"a", 5), (b"b", 2)], "data")
    with pytest.raises(sources.DatasetError, match="data: the eval split has 2 identities, 1 of"):
        executor.check_eval_identities([(b"a", 5), (b"b", 1)], "data")
