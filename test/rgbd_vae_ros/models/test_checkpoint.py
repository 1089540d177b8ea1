"""Checkpoints rebuild their model from the file alone, load with weights_only, refuse the rest."""

import pickle

import pytest
import torch

from rgbd_vae_ros.models import ModelError, build_model, load_checkpoint, model_from_checkpoint
from rgbd_vae_ros.models.checkpoint import checkpoint_payload


class Payload:  # an arbitrary object that a hostile checkpoint could carry
    def __reduce__(self):
        return (print, ("this would run on load",))


def _save(path, payload):
    with open(path, "wb") as f:
        torch.save(payload, f)


def test_a_checkpoint_rebuilds_the_same_model_from_the_file_alone(tmp_path):
    model = build_model("conv_vae", {"image_size": 32, "latent_dim": 8, "widths": (8, 16, 16)}).eval()
    _save(tmp_path / "m.pt", checkpoint_payload(model, step=3))
    rebuilt = model_from_checkpoint(tmp_path / "m.pt")
    assert rebuilt.config == model.config and rebuilt.model_name == "conv_vae" and not rebuilt.training
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(x)["recon"], model(x)["recon"])
    assert load_checkpoint(tmp_path / "m.pt")["step"] == 3


def test_a_checkpoint_holding_a_pickled_object_is_refused(tmp_path, capsys):
    model = build_model("fc_vae", {"image_size": 8, "hidden": (16,)})
    _save(tmp_path / "evil.pt", {**checkpoint_payload(model), "extra": Payload()})
    with pytest.raises(ModelError, match="holds objects other than tensors and plain values"):
        load_checkpoint(tmp_path / "evil.pt")
    assert "this would run" not in capsys.readouterr().out
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"format": Payload()}, f)
    with pytest.raises(ModelError):
        load_checkpoint(tmp_path / "plain.pkl")


def test_missing_truncated_foreign_and_other_torch_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(ModelError, match="is a folder; expected a .pt file"):
        load_checkpoint(tmp_path)
    model = build_model("fc_vae", {"image_size": 8, "hidden": (16,)})
    _save(tmp_path / "m.pt", checkpoint_payload(model))
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated or another kind of file"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "photo.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelError, match="truncated or another kind of file"):
        load_checkpoint(tmp_path / "photo.pt")
    _save(tmp_path / "weights.pt", model.state_dict())
    with pytest.raises(ModelError, match="not an rgbd_vae_ros checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")


def test_weights_that_do_not_fit_the_stored_config_are_a_clear_error(tmp_path):
    model = build_model("fc_vae", {"image_size": 8, "hidden": (16,)})
    payload = checkpoint_payload(model)
    payload["model_config"]["latent_dim"] = 5
    _save(tmp_path / "m.pt", payload)
    with pytest.raises(ModelError, match="do not fit model 'fc_vae'"):
        model_from_checkpoint(tmp_path / "m.pt")


def test_a_config_asking_for_huge_tensors_is_refused_before_anything_is_allocated(tmp_path):
    model = build_model("fc_vae", {"image_size": 8, "hidden": (16,)})
    payload = checkpoint_payload(model)
    payload["model_config"]["hidden"] = [10**12]  # 10^12 x 192 floats: no machine could allocate them
    _save(tmp_path / "m.pt", payload)
    assert (tmp_path / "m.pt").stat().st_size < 100_000
    with pytest.raises(ModelError, match=r"config asks for 'encoder\.0\.weight' \(1000000000000, 192\), "
                                         r"the file holds \(16, 192\)"):
        model_from_checkpoint(tmp_path / "m.pt")


@pytest.mark.slow
def test_a_full_disk_while_saving_names_the_full_disk_not_torch_internals(tmp_path):
    import subprocess
    import sys

    # A real file under a 100 kB file size limit (RLIMIT_FSIZE): the write fails part way, as on a full disk.
    script = """
import resource, sys, torch
from rgbd_vae_ros.files import atomic_output
from rgbd_vae_ros.models import build_model
from rgbd_vae_ros.models.checkpoint import checkpoint_payload, save_checkpoint
payload = checkpoint_payload(build_model("fc_vae", {"image_size": 32, "hidden": (64,)}))
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
try:
    with atomic_output(sys.argv[1]) as f:
        save_checkpoint(payload, f)
except OSError as exc:
    print(exc.errno, exc)
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.pt")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "27 [Errno 27] File too large"  # EFBIG, not "enforce fail at inline_container.cc"
    assert list(tmp_path.iterdir()) == []
