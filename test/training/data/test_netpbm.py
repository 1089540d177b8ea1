"""PPM/PGM as the NYU Kinect recorder writes them, and clear errors on bad files."""

import numpy as np
import pytest
from PIL import Image

from rgbd_vae_training.data import DataError
from rgbd_vae_training.data.netpbm import encode_nyu_pgm, encode_ppm, read_pgm, read_ppm


def test_round_trip_of_rgb_and_little_endian_depth(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    raw = np.array([[0, 1, 256, 1000, 2047, 65535, 513]], np.uint16)
    (tmp_path / "r.ppm").write_bytes(encode_ppm(rgb))
    (tmp_path / "d.pgm").write_bytes(encode_nyu_pgm(raw))
    np.testing.assert_array_equal(read_ppm(tmp_path / "r.ppm"), rgb)
    np.testing.assert_array_equal(read_pgm(tmp_path / "d.pgm"), raw)
    assert (tmp_path / "d.pgm").read_bytes().endswith(raw.astype("<u2").tobytes())


def test_a_standard_pgm_reader_gets_byte_swapped_values(tmp_path):
    raw = np.array([[1, 600, 1000, 2047]], np.uint16)
    (tmp_path / "d.pgm").write_bytes(encode_nyu_pgm(raw))
    standard = np.asarray(Image.open(tmp_path / "d.pgm")).astype(np.uint16)  # PGM standard: big-endian
    assert not np.array_equal(standard, raw)
    np.testing.assert_array_equal(standard, raw.byteswap())
    np.testing.assert_array_equal(read_pgm(tmp_path / "d.pgm", byte_order=">"), raw.byteswap())


@pytest.mark.parametrize("content,reader,match", [
    (b"P6\n4 4\n255\n" + b"\x00" * 10, read_ppm, "truncated: 10 bytes of pixels, expected 48"),
    (b"P5\n4 4\n65535\n" + b"\x00" * 31, read_pgm, "truncated: 31 bytes of pixels, expected 32"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, read_ppm, "is not a P6 PPM file"),
    (b"P6\n4 4\n255\n" + b"\x00" * 48, read_pgm, r"is not a P5 PGM file \(it starts with 'P6'\)"),
    (b"", read_pgm, "it starts with 'an empty file'"),
])
def test_bad_netpbm_files_raise_one_clear_sentence(tmp_path, content, reader, match):
    path = tmp_path / "bad.pnm"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        reader(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match="cannot read .*nope.pgm"):
        read_pgm(tmp_path / "nope.pgm")
