"""The VAE's place term (issue 16): InfoNCE over μ of two views of a room, the views drawn from a
revisit walk (``train.place_data``), and what training with it does to the codes of views of one room."""

import math

import numpy as np
import pytest
import torch

from rgbd_vae_training.losses import info_nce
from rgbd_vae_training.synth.generate import write_nyu_raw
from rgbd_vae_training.synth.revisit import read_places, write_nyu_raw_revisit
from rgbd_vae_training.train.config import ConfigError, load_config
from rgbd_vae_training.train.place_pairs import PlacePairs
from rgbd_vae_training.train.tasks import TaskError, make_task

TAU = 0.1


def test_info_nce_is_small_when_each_code_is_nearest_its_partner_and_large_when_nearest_another():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    paired = torch.stack([e1, e2, e1, e2])  # rows i and 2 + i: two views of place i
    # row 0's logits: itself masked, e2 0, its partner e1 1 / TAU, e2 0
    expected = -math.log(math.exp(1 / TAU) / (math.exp(1 / TAU) + 2))
    assert info_nce(paired, TAU).item() == pytest.approx(expected, rel=1e-3)
    swapped = torch.stack([e1, e2, e2, e1])  # each view's partner is the other place's code
    assert info_nce(swapped, TAU).item() == pytest.approx(math.log(math.exp(1 / TAU) + 2), rel=1e-4)
    # cosine: the length of a code does not count
    lengths = torch.tensor([[3.0], [0.5], [7.0], [2.0]])
    assert info_nce(paired * lengths, TAU).item() == pytest.approx(expected, rel=1e-3)


def test_info_nce_gradient_pulls_a_view_towards_its_partner():
    codes = torch.tensor([[1.0, 0.2], [0.0, 1.0], [0.8, 0.6], [0.1, 1.0]], requires_grad=True)
    info_nce(codes, TAU).backward()
    step = codes.detach() - 0.05 * codes.grad
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(step[0], step[2], dim=0) > cosine(codes[0].detach(), codes[2].detach(), dim=0)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_info_nce_needs_two_places_in_pairs(count):
    with pytest.raises(ValueError, match="even number of codes, at least 4"):
        info_nce(torch.ones(count, 3), TAU)


@pytest.mark.parametrize("overrides, message", [
    (["train.place_data=walk", "loss.place_weight=0"], "loss.place_weight is 0; give it a weight"),
    (["loss.place_weight=-1.0", "train.place_data=walk"], "place_weight must be 0 or more"),
    (["loss.place_temperature=0.0"], "place_temperature positive"),
    (["train.place_rooms=1"], "place_rooms must be at least 2"),
])
def test_a_place_term_without_its_walk_or_with_bad_values_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny_vae", overrides)


def test_a_place_term_without_a_walk_stops_before_training(nyu_raw_dir, tmp_path):
    from rgbd_vae_training.train.loop import TrainingError, train

    config = load_config("tiny_vae", ["loss.place_weight=5", "train.place_data=''", "model.image_size=32",
                                      "model.widths=[8,8,8]", "train.batch_size=2"])
    with pytest.raises(TrainingError, match="place term .* no walk to draw its views from; give train.place_data"):
        train(config, nyu_raw_dir, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_depth_model_has_no_place_term():
    with pytest.raises(ConfigError, match="train.place_data"):
        load_config("tiny_depth", ["train.place_data=walk"])


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    out = tmp_path_factory.mktemp("walk")
    write_nyu_raw_revisit(out, rooms=5, frames_per_visit=2, seed=3, width=64, height=48)
    return out


def _task():
    return make_task(load_config("tiny_vae", ["model.image_size=32", "model.widths=[8,8,8]", "model.latent_dim=8"]))


def test_each_step_draws_two_views_of_each_room_from_different_visits_the_same_way_every_time(walk):
    pairs = PlacePairs(_task(), walk, rooms=4, seed=0)
    rows = read_places(walk)
    room = {round(r["depth_stamp_s"], 4): r["room"] for r in rows}
    visit = {round(r["depth_stamp_s"], 4): r["room_visit"] for r in rows}
    reader = pairs.dataset.reader
    key = [round(pair.depth_stamp_s, 4) for _, pair in reader.pairs]
    drawn = set()
    for step in range(6):
        indices = pairs.indices(step)
        assert indices == PlacePairs(_task(), walk, rooms=4, seed=0).indices(step)  # as a resumed run draws
        first, second = indices[:4], indices[4:]
        assert len({room[key[i]] for i in first}) == 4  # four rooms
        for a, b in zip(first, second):
            assert room[key[a]] == room[key[b]] and visit[key[a]] != visit[key[b]]
        drawn.add(tuple(indices))
    assert len(drawn) > 1  # the draw changes with the step
    assert pairs.indices(0) != PlacePairs(_task(), walk, rooms=4, seed=1).indices(0)
    batch = pairs.batch(0)
    assert batch["rgb"].shape == (8, 3, 32, 32) and batch["depth"].shape == (8, 1, 32, 32)


def test_a_walk_with_too_few_rooms_or_no_places_is_named(walk, tmp_path):
    with pytest.raises(TaskError, match="has 5 rooms seen on more than one visit; train.place_rooms needs 6"):
        PlacePairs(_task(), walk, rooms=6)
    plain = tmp_path / "plain"
    write_nyu_raw(plain, scenes=2, frames=2, seed=0, width=64, height=48)
    with pytest.raises(TaskError, match="train.place_data: .*holds no places.csv"):
        PlacePairs(_task(), plain, rooms=2)
    images = tmp_path / "images"  # a places.csv beside frames that are not a walk's
    images.mkdir()
    from PIL import Image

    for i in range(4):
        Image.new("RGB", (64, 48), (i * 40, 0, 0)).save(images / f"{i}.png")
    (images / "places.csv").write_text((walk / "synth_walk" / "places.csv").read_text())
    with pytest.raises(TaskError, match="holds a places.csv but not a walk's NYU raw scene folders"):
        PlacePairs(make_task(load_config("tiny_vae", ["model.mode=rgb", "model.image_size=32",
                                                       "model.widths=[8,8,8]"])), images, rooms=2)


def _pair_cosines(model, task, pairs: PlacePairs, steps=range(20)) -> tuple[float, float]:
    """Mean cosine of μ between the two views of a room, and between views of different rooms."""
    same, other = [], []
    model.eval()
    with torch.no_grad():
        for step in steps:
            mu = model(task.prepare(pairs.batch(step), torch.device("cpu"))["input"])["mu"]
            unit = torch.nn.functional.normalize(mu, dim=1).numpy()
            half = len(unit) // 2
            cos = unit @ unit.T
            same += [cos[i, half + i] for i in range(half)]
            other += [cos[i, half + j] for i in range(half) for j in range(half) if i != j]
    return float(np.mean(same)), float(np.mean(other))


@pytest.mark.slow
def test_training_with_the_place_term_brings_views_of_one_room_together(walk, tmp_path, learning_data):
    # a learning test on the walk's own five rooms: generalising to unseen rooms takes hundreds of rooms
    # and thousands of steps (docs/benchmarks.md, "Place recognition")
    from rgbd_vae_ros.models import build_model, load_checkpoint
    from rgbd_vae_training.train.loop import train

    common = ["model.image_size=32", "model.widths=[8,16,16]", "model.latent_dim=16", "train.max_steps=80",
              "train.epochs=20", "train.validate=false", "train.place_rooms=4"]
    gaps = {}
    for name, extra in (("plain", []), ("place", ["loss.place_weight=300", f"train.place_data={walk}"])):
        config = load_config("tiny_vae", common + extra)
        result = train(config, learning_data, tmp_path / name, progress=False)
        assert result.steps == 80
        payload = load_checkpoint(result.checkpoint)
        model = build_model(payload["model_name"], payload["model_config"])
        model.load_state_dict(payload["model"])
        task = make_task(config)
        same, other = _pair_cosines(model, task, PlacePairs(task, walk, rooms=4, seed=9))
        gaps[name] = same - other
    # the place term makes two views of a room closer than views of two rooms, by more than without it
    assert gaps["place"] > 0.2 and gaps["place"] > gaps["plain"] + 0.1, gaps


def test_a_resumed_run_draws_the_views_the_straight_run_drew(walk, nyu_raw_dir, tmp_path):
    from rgbd_vae_ros.models import load_checkpoint
    from rgbd_vae_training.train.loop import train

    def config(steps):
        return load_config("tiny_vae", ["model.image_size=32", "model.widths=[8,16,16]", "model.latent_dim=8",
                                        "train.batch_size=2", "train.epochs=2", f"train.max_steps={steps}",
                                        "train.place_rooms=3", "loss.place_weight=100", f"train.place_data={walk}"])

    straight = train(config(4), nyu_raw_dir, tmp_path / "a", progress=False)
    train(config(2), nyu_raw_dir, tmp_path / "b", progress=False)
    resumed = train(config(4), nyu_raw_dir, tmp_path / "b", resume=True, progress=False)
    assert resumed.losses == pytest.approx(straight.losses[2:], rel=1e-5)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_the_views_are_encoded_but_not_decoded_in_the_one_forward_pass():
    from rgbd_vae_ros.models import build_model

    task = _task()
    torch.manual_seed(0)
    model = build_model("conv_vae", task.config).eval()
    x = torch.rand(5, 4, 32, 32) * 2 - 1
    with torch.no_grad():
        whole = task.forward(model, {"input": x, "label": None})
        batch_only = task.forward(model, {"input": x, "label": None}, decode=2)
    assert batch_only["recon"].shape == batch_only["recon_logits"].shape == (2, 5, 32, 32)
    assert batch_only["mu"].shape == (5, 8)
    torch.testing.assert_close(batch_only["recon"], whole["recon"][:2])
    torch.testing.assert_close(batch_only["mu"], whole["mu"])
    # a VAE with a forward of its own decodes everything and hands back the first ones' decodes
    # (an RGB-D one: the decoded validity's loss takes the values before the tanh of those same frames)
    fc = make_task(load_config("fc_vae", ["model.image_size=8", "model.latent_dim=4", "model.hidden=[16]",
                                          "model.mode=rgbd"]))
    model = build_model("fc_vae", fc.config).eval()
    prepared = {"input": torch.zeros(5, 4, 8, 8), "label": None}
    with torch.no_grad():
        out = fc.forward(model, prepared, decode=3)
    assert out["recon"].shape[0] == out["recon_logits"].shape[0] == 3 and out["mu"].shape[0] == 5
    target, valid = torch.zeros(3, 4, 8, 8), torch.ones(3, 4, 8, 8, dtype=torch.bool)
    assert torch.isfinite(fc.loss(out, {"target": target, "valid": valid}, 0)["recon_validity"])


def test_about_half_the_batch_takes_a_views_missing_depth_and_is_not_scored_there(walk):
    task = _task()
    pairs = PlacePairs(task, walk, rooms=4, seed=0)
    views = task.prepare(pairs.batch(0), torch.device("cpu"))
    view_valid = views["valid"][:, 3:]
    assert (~view_valid).float().mean() > 0.1  # a raw Kinect frame: its registration border has no depth
    torch.manual_seed(0)
    batch = {"input": torch.rand(6, 4, 32, 32) * 2 - 1, "label": None,
             "valid": torch.ones(6, 4, 32, 32, dtype=torch.bool)}
    batch["target"] = batch["input"].clone()
    chosen_per_step = []
    for step in range(8):
        out = pairs.with_view_validity(batch, views, step)
        assert out is not batch and torch.equal(out["target"], batch["target"])
        assert torch.equal(out["input"][:, :3], batch["input"][:, :3]) and torch.equal(out["valid"][:, :3],
                                                                                   batch["valid"][:, :3])
        chosen = []
        for i in range(6):
            depth, valid = out["input"][i, 3], out["valid"][i, 3]
            if torch.equal(valid, view_valid[i, 0]):  # this frame took view i's validity
                chosen.append(i)
                assert torch.all(depth[~valid] == -1.0) and torch.equal(depth[valid], batch["input"][i, 3][valid])
            else:  # left as it was
                assert valid.all() and torch.equal(depth, batch["input"][i, 3])
        chosen_per_step.append(chosen)
        again = pairs.with_view_validity(batch, views, step)  # the same step draws the same frames
        assert torch.equal(again["input"], out["input"]) and torch.equal(again["valid"], out["valid"])
    counts = [len(c) for c in chosen_per_step]
    assert 0 < sum(counts) < 48 and len({tuple(c) for c in chosen_per_step}) > 1
    assert torch.all(batch["valid"])  # the caller's batch is not changed
    rgb_only = {"input": torch.zeros(2, 3, 32, 32), "valid": None, "target": torch.zeros(2, 3, 32, 32)}
    assert pairs.with_view_validity(rgb_only, views, 0) is rgb_only


def test_the_batch_and_the_first_views_of_as_many_rooms_are_decoded_and_scored(walk):
    from rgbd_vae_ros.models import build_model

    task = _task()
    pairs = PlacePairs(task, walk, rooms=4, seed=0)
    torch.manual_seed(0)
    model = build_model("conv_vae", task.config).eval()  # mu as the code: the same outputs in any batch
    batch = task.prepare(pairs.batch(5), torch.device("cpu"))  # any frames of the walk serve as a batch
    batch = {key: value[:3] if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
    with torch.no_grad():
        own, terms = pairs.forward_and_loss(task, model, batch, step=2, device=torch.device("cpu"))
        views = task.prepare(pairs.batch(2), torch.device("cpu"))
        seen = pairs.with_view_validity(batch, views, 2)
        scored = {key: torch.cat([seen[key], views[key][:3]]) if isinstance(value, torch.Tensor) else value
                  for key, value in seen.items()}  # 3 batch frames, then the first views of 3 rooms
        expected = task.loss(model(scored["input"]), scored, 2)
        place = info_nce(model(views["input"])["mu"], TAU)
    assert own["recon"].shape[0] == 3 and own["mu"].shape[0] == 3
    torch.testing.assert_close(terms["recon"], expected["recon"])
    torch.testing.assert_close(terms["place"], place)
    torch.testing.assert_close(terms["loss"], expected["loss"] + task.loss_fn.place_weight * place)
