"""The demo's VAE trains on rooms of its own (more of them than the depth model's, in the labeled
layout), synthesised once and reused; ``--vae-config`` names the VAE's training config."""

from __future__ import annotations

import argparse

import pytest

from rgbd_vae_training import demo


@pytest.mark.slow
def test_the_vae_rooms_are_synthesised_in_the_labeled_layout_once_and_then_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "VAE_ROOMS", {"scenes": 3, "frames": 1, "seed": 2, "width": 32, "height": 24})
    folder = demo.vae_rooms(tmp_path)
    assert "synthesising 3 training rooms for the VAE" in capsys.readouterr().out
    assert folder == tmp_path / "data" / "vae_rooms"
    assert sorted(p.name for p in folder.iterdir()) == ["nyu_depth_v2_labeled.mat", "splits.mat", "synth.json"]
    assert demo.vae_rooms(tmp_path) == folder
    assert "reusing the VAE's training rooms" in capsys.readouterr().out
    monkeypatch.setattr(demo, "VAE_ROOMS", {"scenes": 4, "frames": 1, "seed": 2, "width": 32, "height": 24})
    demo.vae_rooms(tmp_path)  # other settings: synthesised again, not reused
    assert "synthesising 4 training rooms for the VAE" in capsys.readouterr().out


def test_the_demo_takes_the_vae_config_by_name_or_file_defaulting_to_tiny_vae_places():
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    assert parser.parse_args([]).vae_config == "tiny_vae_places"
    assert parser.parse_args(["--vae-config", "run/config.yaml"]).vae_config == "run/config.yaml"


def test_a_vae_config_that_does_not_exist_is_refused_before_anything_is_made(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    cli = Path(sys.executable).with_name("rgbd-vae")
    result = subprocess.run([str(cli), "demo", "--out", str(tmp_path / "demo_out"), "--vae-config", "nope"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "config 'nope' is neither a file nor a bundled config" in result.stderr
    assert not (tmp_path / "demo_out").exists()  # nothing synthesised or trained first
