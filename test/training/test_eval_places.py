"""``rgbd-vae eval places``: the metric code on inputs with known answers, and the command end to end."""

import json

import numpy as np
import pytest

from rgbd_vae_ros.places import Match
from rgbd_vae_training.cli import main as cli
from rgbd_vae_training.place_eval import BINS_DEG, bin_label, place_metrics, retrieve
from rgbd_vae_training.synth.revisit import read_places, write_nyu_raw_revisit

S = 1_000_000_000
LOW, MID, HIGH = (bin_label(*b) for b in BINS_DEG)


@pytest.fixture(scope="module")
def tiny_walk(tmp_path_factory):
    out = tmp_path_factory.mktemp("walk")
    write_nyu_raw_revisit(out, rooms=3, frames_per_visit=2, seed=2, width=64, height=48)
    return out


def test_room_identity_codes_through_the_library_give_perfect_recall_in_every_bin(tiny_walk):
    rows = read_places(tiny_walk)
    stamps = np.array([round(r["depth_stamp_s"] * 1e9) for r in rows])
    rooms = [r["room"] for r in rows]
    codes = np.eye(3)[rooms]  # perfect information: the room id, one-hot
    result = place_metrics(retrieve(stamps, codes), stamps, rooms, [r["view_change_deg"] for r in rows])
    assert result["all revisits"]["queries"] == 3 * 3 * 2  # every room revisited once per bin, 2 frames each
    assert sum(result[label]["queries"] for label in (LOW, MID, HIGH)) == 18
    for label in (LOW, MID, HIGH, "all revisits"):
        if result[label]["queries"]:
            assert result[label]["recall_at_1"] == 1.0 and result[label]["recall_at_100_precision"] == 1.0
    # the same walk with codes that carry nothing (one code for every frame): recall is chance, not 1
    blind = place_metrics(retrieve(stamps, np.ones((len(rows), 3))), stamps, rooms, [r["view_change_deg"] for r in rows])
    assert blind["all revisits"]["recall_at_1"] < 1.0 and blind["all revisits"]["recall_at_100_precision"] == 0.0


def test_recall_at_1_and_recall_at_full_precision_on_constructed_matches():
    # frames 0-3: first visits of rooms 0 and 1 (stamps 0, 1 s and 20, 21 s); frames 4-7: revisits at 12-48 deg
    stamps = [0, 1 * S, 20 * S, 21 * S, 40 * S, 41 * S, 60 * S, 61 * S]
    rooms = [0, 0, 1, 1, 0, 0, 1, 1]
    change = [None, None, None, None, 20.0, 30.0, 40.0, 5.0]
    matches = [None, None,
               Match(20 * S, 0, 0.5),  # room 1's first visit matched to room 0: a false loop closure at 0.5
               None,
               Match(40 * S, 0, 0.9),  # right
               Match(41 * S, 1 * S, 0.4),  # right, but below the false closure's score
               Match(60 * S, 1 * S, 0.8),  # wrong (room 0) at 0.8
               Match(61 * S, 20 * S, 0.95)]  # right, the only query of the 0-12 bin
    result = place_metrics(matches, stamps, rooms, change)
    assert result[MID]["queries"] == 3
    assert result[MID]["recall_at_1"] == pytest.approx(2 / 3)
    # wrong scores in or around the bin: 0.8 (in it) and 0.5 (a first visit): only the 0.9 survives
    assert result[MID]["recall_at_100_precision"] == pytest.approx(1 / 3) and result[MID]["threshold"] == 0.8
    assert result[LOW] == {"queries": 1, "recall_at_1": 1.0, "recall_at_100_precision": 1.0, "threshold": 0.5}
    assert result[HIGH]["queries"] == 0 and result[HIGH]["recall_at_1"] is None
    assert result["all revisits"]["recall_at_1"] == 0.75


def _bare_vae(tmp_path):
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    torch.manual_seed(0)
    path = tmp_path / "vae.pt"
    torch.save(checkpoint_payload(build_model("conv_vae", {"mode": "rgbd", "image_size": 32, "latent_dim": 8,
                                                           "widths": [8, 16, 16]}).eval()), path)
    return path


@pytest.mark.slow
def test_eval_places_reports_every_method_and_bin_into_json_and_names_bad_input(tiny_walk, tmp_path, capsys):
    checkpoint = _bare_vae(tmp_path)
    json_file = tmp_path / "places.json"
    assert cli(["eval", "places", "--checkpoint", str(checkpoint), "--data", str(tiny_walk), "--json", str(json_file),
                "--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    result = json.loads(json_file.read_text())
    assert json.loads((tmp_path / "eval" / "places.json").read_text()) == result
    assert result["images"] == 3 * 4 * 2 and result["rooms"] == 3 and result["first_visit_frames"] == 6
    assert set(result["methods"]) == {f"{m}, {s}" for m in ("vae", "pca-8", "tiny-image-16x12", "rgb-histogram-8^3")
                                      for s in ("cosine", "standardised cosine", "whitened cosine")}
    for bins in result["methods"].values():
        assert set(bins) == {LOW, MID, HIGH, "all revisits"} and bins["all revisits"]["queries"] == 18
        for values in bins.values():
            assert values["queries"] == 0 or 0.0 <= values["recall_at_100_precision"] <= values["recall_at_1"] <= 1.0
    assert "12-48 deg" in printed and "R@100%P" in printed and "tiny-image-16x12" in printed
    from PIL import Image

    figure = np.asarray(Image.open(tmp_path / "eval" / "places.png"))
    assert figure.ndim == 3 and figure.shape[0] > 96 and figure.std() > 10

    (tiny_walk / "synth_walk" / "places.csv").rename(tmp_path / "moved.csv")
    try:
        assert cli(["eval", "places", "--checkpoint", str(checkpoint), "--data", str(tiny_walk),
                    "--out", str(tmp_path / "eval2")]) == 1
        assert "holds no places.csv" in capsys.readouterr().err
    finally:
        (tmp_path / "moved.csv").rename(tiny_walk / "synth_walk" / "places.csv")
    assert not (tmp_path / "eval2").exists()
    assert cli(["eval", "places", "--checkpoint", str(checkpoint), "--data", str(tiny_walk),
                "--recent-window", "-1", "--out", str(tmp_path / "eval3")]) == 1
    assert "--recent-window is -1" in capsys.readouterr().err



def test_eval_places_fits_on_the_training_frames_of_train_data_when_given(tiny_walk, tmp_path, capsys):
    from rgbd_vae_training.data import open_dataset
    from rgbd_vae_training.synth.generate import write_nyu_raw

    rooms = tmp_path / "rooms"
    write_nyu_raw(rooms, scenes=4, frames=2, seed=3, width=64, height=48)
    training_frames = len(open_dataset(rooms, split="train"))
    json_file = tmp_path / "places.json"
    assert cli(["eval", "places", "--checkpoint", str(_bare_vae(tmp_path)), "--data", str(tiny_walk),
                "--train-data", str(rooms), "--json", str(json_file), "--out", str(tmp_path / "eval")]) == 0, \
        capsys.readouterr().err
    result = json.loads(json_file.read_text())
    assert result["normalisation_and_pca_fit_on"] == f"{training_frames} training frames of {rooms}"
    assert result["methods"]["vae, whitened cosine"]["all revisits"]["queries"] == 18

def test_the_colour_histogram_counts_colours_wherever_they_are():
    from rgbd_vae_training.place_eval import colour_histogram

    frame = np.zeros((4, 6, 3), np.uint8)
    frame[:, :3] = (250, 10, 10)  # red in bin (7, 0, 0)
    frame[:, 3:] = (10, 10, 200)  # blue in bin (0, 0, 6)
    histogram = colour_histogram(frame)
    assert histogram.shape == (512,)
    assert histogram[7 * 64] == pytest.approx(np.sqrt(0.5)) and histogram[6] == pytest.approx(np.sqrt(0.5))
    assert np.count_nonzero(histogram) == 2 and np.linalg.norm(histogram) == pytest.approx(1.0)
    turned = np.roll(frame, 2, axis=1)[:, ::-1]  # the same colours elsewhere in the frame
    assert np.array_equal(colour_histogram(turned), histogram)
