"""DenseDepth CSV, MNIST IDX and image-folder readers on generated files; layout detection."""

import gzip
import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from rgbd_vae_training.data import DataError, open_dataset
from rgbd_vae_training.data.densedepth import DenseDepthNYU
from rgbd_vae_training.data.detect import detect_layout
from rgbd_vae_training.data.image_folder import ImageFolder
from rgbd_vae_training.data.mnist import MNIST, read_idx
from rgbd_vae_training.data.nyu_mat import LABELED_NAME


def _png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def densedepth_dir(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "nyu_data"
    depth_m = rng.uniform(0.5, 9.5, (2, 12, 16)).astype(np.float32)
    files = {}
    for i in range(2):
        rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        files[f"data/nyu2_train/living_room_0001_out/{i}.jpg"] = _png_bytes(rgb)  # PIL sniffs the format
        files[f"data/nyu2_train/living_room_0001_out/{i}.png"] = _png_bytes(np.rint(depth_m[i] / 10 * 255).astype(np.uint8))
        files[f"data/nyu2_test/{i:05d}_colors.png"] = _png_bytes(rgb)
        files[f"data/nyu2_test/{i:05d}_depth.png"] = _png_bytes(np.rint(depth_m[i] * 1000).astype(np.uint16))
    files["data/nyu2_train.csv"] = "".join(
        f"data/nyu2_train/living_room_0001_out/{i}.jpg,data/nyu2_train/living_room_0001_out/{i}.png\n" for i in range(2)).encode()
    files["data/nyu2_test.csv"] = "".join(
        f"data/nyu2_test/{i:05d}_colors.png,data/nyu2_test/{i:05d}_depth.png\n" for i in range(2)).encode()
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    with zipfile.ZipFile(tmp_path / "nyu_data.zip", "w") as archive:
        for name, blob in files.items():
            archive.writestr(name, blob)
    return root, depth_m


@pytest.mark.parametrize("as_zip", [False, True])
def test_densedepth_reads_metres_from_8_bit_train_and_16_bit_test(densedepth_dir, as_zip):
    root, depth_m = densedepth_dir
    path = root.with_suffix(".zip") if as_zip else root
    train, test = DenseDepthNYU(path, "train"), DenseDepthNYU(path, "test")
    assert len(train) == len(test) == 2
    np.testing.assert_allclose(train[1].depth_m, depth_m[1], atol=10 / 255 / 2 + 1e-6)
    np.testing.assert_allclose(test[1].depth_m, depth_m[1], atol=0.0005 + 1e-6)
    assert train[0].scene == "living_room_0001" and train[0].rgb_u8.shape == (12, 16, 3)
    assert train.frame_scenes == ["living_room_0001"] * 2 and test.frame_scenes == [f.scene for f in test]
    assert detect_layout(path) == "densedepth"


def test_densedepth_sessions_of_one_room_are_one_room(tmp_path):
    """DenseDepth names a scene's folder ``<scene>_out``: ``basement_0001a_out`` and ``basement_0001b_out``
    are two sessions of one room, held back to validate on together or not at all."""
    from rgbd_vae_training.data.splits import hold_out, room_of

    root = tmp_path / "nyu_data" / "data"
    rows = []
    for n, scene in enumerate(["basement_0001a", "basement_0001b", "bedroom_0002a", "bedroom_0002b", "office_0003"]):
        folder = root / "nyu2_train" / f"{scene}_out"
        folder.mkdir(parents=True)
        (folder / "1.jpg").write_bytes(_png_bytes(np.full((4, 4, 3), n, np.uint8)))
        (folder / "1.png").write_bytes(_png_bytes(np.full((4, 4), 100, np.uint8)))
        rows.append(f"data/nyu2_train/{scene}_out/1.jpg,data/nyu2_train/{scene}_out/1.png\n")
    (root / "nyu2_train.csv").write_text("".join(rows))
    reader = DenseDepthNYU(tmp_path / "nyu_data", "train")
    assert [room_of(s) for s in reader.frame_scenes] == ["basement_0001"] * 2 + ["bedroom_0002"] * 2 + ["office_0003"]
    kept, held = hold_out(reader.frame_scenes, len(reader), 0.34)  # one room of three
    assert len({room_of(reader.frame_scenes[i]) for i in held}) == 1
    assert {room_of(reader.frame_scenes[i]) for i in held}.isdisjoint(room_of(reader.frame_scenes[i]) for i in kept)


def test_densedepth_csv_naming_a_missing_file_is_refused(densedepth_dir):
    root, _ = densedepth_dir
    (root / "data/nyu2_test/00001_depth.png").unlink()
    with pytest.raises(DataError, match="'data/nyu2_test/00001_depth.png', named in the DenseDepth CSV, is missing"):
        DenseDepthNYU(root, "test")[1]


@pytest.mark.parametrize("name", ["../secret.png", "data/../../secret.png", "/etc/passwd", "C:\\secret.png",
                                  "..\\secret.png"])
@pytest.mark.parametrize("as_zip", [False, True])
def test_densedepth_csv_paths_that_leave_the_data_folder_are_refused(densedepth_dir, name, as_zip):
    root, _ = densedepth_dir
    (root.parent / "secret.png").write_bytes((root / "data/nyu2_test/00000_depth.png").read_bytes())
    rows = (root / "data/nyu2_test.csv").read_text().splitlines()
    rows[1] = f"data/nyu2_test/00001_colors.png,{name}"
    (root / "data/nyu2_test.csv").write_text("\n".join(rows) + "\n")
    path = root
    if as_zip:
        path = root.with_suffix(".zip")
        with zipfile.ZipFile(path, "w") as archive:
            for file in root.rglob("*"):
                if file.is_file():
                    archive.write(file, file.relative_to(root).as_posix())
    with pytest.raises(DataError, match=f"nyu2_test.csv row 2 names {re.escape(repr(name))}, a path outside the data"):
        DenseDepthNYU(path, "test")


def test_densedepth_csv_path_through_a_link_out_of_the_folder_is_refused(densedepth_dir):
    root, _ = densedepth_dir
    (root.parent / "outside").mkdir()
    (root.parent / "outside" / "00001_depth.png").write_bytes((root / "data/nyu2_test/00001_depth.png").read_bytes())
    (root / "data/nyu2_test/00001_depth.png").unlink()
    (root / "data/link").symlink_to(root.parent / "outside")
    rows = (root / "data/nyu2_test.csv").read_text().replace("data/nyu2_test/00001_depth.png", "data/link/00001_depth.png")
    (root / "data/nyu2_test.csv").write_text(rows)
    with pytest.raises(DataError, match="leads outside .* through a link"):
        DenseDepthNYU(root, "test")[1]


def _idx(array, magic_dims):
    header = bytes([0, 0, 8, magic_dims]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gzipped", [False, True])
def test_mnist_idx_images_and_labels(tmp_path, gzipped):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    for name, blob in (("train-images-idx3-ubyte", _idx(images, 3)), ("train-labels-idx1-ubyte", _idx(labels, 1))):
        (tmp_path / (name + (".gz" if gzipped else ""))).write_bytes(gzip.compress(blob) if gzipped else blob)
    mnist = MNIST(tmp_path)
    assert len(mnist) == 5 and mnist[2].label == 4 and mnist[2].depth_m is None
    np.testing.assert_array_equal(mnist[2].rgb_u8[:, :, 1], images[2])
    assert detect_layout(tmp_path) == "mnist"


def test_mnist_with_mismatched_counts_or_bad_magic_is_refused(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(np.zeros((3, 28, 28)), 3))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(2), 1))
    with pytest.raises(DataError, match=r"shape \(3, 28, 28\) .* \(2,\)"):
        MNIST(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="is not an unsigned-byte IDX file"):
        MNIST(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(3), 1)[:-1])
    with pytest.raises(DataError, match="holds 2 bytes of data; its header promises 3"):
        read_idx(tmp_path / "train-labels-idx1-ubyte")


def test_image_folder_turns_grey_into_rgb(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((6, 8), 77, np.uint8)).save(tmp_path / "a" / "grey.png")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "colour.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = ImageFolder(tmp_path)
    assert len(folder) == 2
    grey = folder[0]
    assert grey.rgb_u8.shape == (6, 8, 3) and np.all(grey.rgb_u8 == 77) and grey.depth_m is None
    assert detect_layout(tmp_path) == "image-folder"


def test_image_folder_with_a_broken_image_names_it(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png' is not a readable image"):
        ImageFolder(tmp_path)[0]


def test_detection_of_nyu_layouts(nyu_raw_dir, nyu_mat_dir):
    assert detect_layout(nyu_raw_dir) == "nyu-raw"
    assert detect_layout(nyu_mat_dir) == "nyu-mat"
    assert detect_layout(nyu_mat_dir / LABELED_NAME) == "nyu-mat"
    assert len(open_dataset(nyu_mat_dir, split="test")) == 2


def test_raw_split_by_scene_never_shares_a_scene(nyu_raw_dir):
    train, test = open_dataset(nyu_raw_dir, split="train"), open_dataset(nyu_raw_dir, split="test")
    assert len(train) + len(test) == 9 and len(test) >= 3
    assert not set(train.scenes) & set(test.scenes)


def test_unknown_layout_and_missing_path_are_refused(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match="holds no data set layout"):
        detect_layout(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        detect_layout(tmp_path / "missing")


def test_idx_header_promising_more_dimensions_than_it_holds_is_refused(tmp_path):
    (tmp_path / "x-idx3-ubyte").write_bytes(bytes([0, 0, 8, 200]) + b"\x00" * 8)
    with pytest.raises(DataError, match="truncated inside its header"):
        read_idx(tmp_path / "x-idx3-ubyte")
