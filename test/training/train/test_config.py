"""Training configuration: bundled YAML files, typed KEY=VALUE overrides, clear errors."""

import pytest

from rgbd_vae_ros.models import build_model
from rgbd_vae_training.train.config import CONFIG_DIR, ConfigError, load_config


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_config_loads_and_builds_its_model(path):
    config = load_config(path)
    model = build_model(config.model_name, config.model)
    assert model.kind == config.task


def test_one_bundled_config_per_model_plus_the_tiny_ones():
    from rgbd_vae_ros.models import model_names

    tiny = {"tiny_vae", "tiny_vae_places", "tiny_depth", "tiny_fast_depth", "tiny_mff_depth"}
    assert {p.stem for p in CONFIG_DIR.glob("*.yaml")} == set(model_names()) | tiny


def test_overrides_keep_their_types_and_reach_every_section():
    config = load_config("tiny_vae", ["train.lr=1e-3", "model.widths=[8, 16]", "model.image_size=16",
                                      "loss.beta=2", "train.augment=false"])
    assert config.train.lr == 1e-3 and isinstance(config.train.lr, float)
    assert config.model.widths == (8, 16) and config.model.image_size == 16
    assert config.loss.beta == 2.0 and config.train.augment is False
    assert config.to_dict()["model"]["name"] == "conv_vae"


@pytest.mark.parametrize("overrides, message", [
    (["lr=1"], "must start with model., train. or loss."),
    (["train.lr"], "is not KEY=VALUE"),
    (["train.learning_rate=1"], "train has no setting 'learning_rate'"),
    (["train.batch_size=two"], "train.batch_size must be int, got 'two'"),
    (["train.batch_size=0"], "batch_size must be at least 1"),
    (["model.name=nope"], "unknown model 'nope'"),
    (["loss.w_l1=1"], "loss has no setting 'w_l1'"),
    (["train.max_steps=-1"], "max_steps must be 0 or more, got -1"),
    (["train.num_workers=-2"], "num_workers must be 0 or more"),
    (["train.log_every=0"], "log_every must be at least 1"),
    (["loss.beta=-0.5"], "beta and warmup_steps must be 0 or more"),
    (["train.lr_schedule=step"], "lr_schedule 'step' is not one of cosine, constant"),
    (["train.warmup_steps=-1"], "warmup_steps must be 0 or more, got -1"),
    (["train.min_lr=1"], r"min_lr must be between 0 and lr \(0.002\), got 1.0"),
    (["train.validation_share=1"], r"validation_share is the share .* above 0 and below 1, got 1.0 \(train.validate=false"),
    (["train.validation_share=0"], "above 0 and below 1, got 0"),
])
def test_bad_overrides_are_one_clear_sentence(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny_vae", overrides)


def test_wrong_task_missing_file_and_bad_yaml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="is for task 'vae', not 'depth'"):
        load_config("tiny_vae", task="depth")
    with pytest.raises(ConfigError, match="neither a file nor a bundled config"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "mixed.yaml").write_text("task: vae\nmodel: {name: unet_depth}\n")
    with pytest.raises(ConfigError, match="model 'unet_depth' cannot be trained as task 'vae'"):
        load_config(tmp_path / "mixed.yaml")
    with pytest.raises(ConfigError, match="loss weights must be 0 or more and not all 0"):
        load_config("tiny_depth", ["loss.w_l1=0", "loss.w_log_depth=0", "loss.w_gradient=0", "loss.w_ssim=0"])
    (tmp_path / "bad.yaml").write_text("task: [vae\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.parametrize("text, message", [
    ("trian: {lr: 1.0e-3}", "config section 'trian' is unknown \\(did you mean 'train'\\?\\); the sections are "
                            "task, model, train, loss"),
    ("optimizer: {lr: 1.0e-3}", "config section 'optimizer' is unknown; the sections are task, model, train, loss"),
    ("train: 5", "config section 'train' is 5; expected a mapping of settings"),
])
def test_an_unknown_or_malformed_section_is_refused_naming_the_known_ones(tmp_path, text, message):
    (tmp_path / "typo.yaml").write_text(f"task: vae\nmodel: {{name: conv_vae}}\n{text}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "typo.yaml")
