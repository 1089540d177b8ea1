"""conv_vae's ``linear_path``: a linear map of the input added to μ and one of the code added to the
decoder's output before the tanh; off by default (earlier checkpoints keep their layers)."""

import torch

from rgbd_vae_ros.models import build_model, config_from_dict


def _model(linear_path: bool):
    torch.manual_seed(0)
    config = config_from_dict("conv_vae", {"image_size": 8, "latent_dim": 3, "widths": [4, 4],
                                           "linear_path": linear_path})
    return build_model("conv_vae", config).eval()


def test_without_linear_path_the_model_has_no_linear_layers():
    assert not any(name.startswith(("linear", "linear_in")) for name in _model(False).state_dict())


def test_the_linear_paths_add_a_linear_map_of_the_input_to_mu_and_of_the_code_to_the_output():
    model = _model(True)
    x = torch.rand(2, 4, 8, 8) * 2 - 1
    z = torch.randn(2, 3)
    with torch.no_grad():
        mu, _ = model.encode(x)
        linear_in, model.linear_in = model.linear_in, None
        mu_convolved, _ = model.encode(x)
        model.linear_in = linear_in
        assert torch.allclose(mu - mu_convolved, linear_in(x.flatten(1)), atol=1e-5)
        decoded = model.decode(z)
        linear, model.linear = model.linear, None
        convolved = model.decode_logits(z)
        model.linear = linear
        expected = torch.tanh(convolved + linear(z).view(2, 5, 8, 8))  # RGB, depth, depth validity
        assert torch.allclose(decoded, expected, atol=1e-4)
    assert decoded.shape == (2, 5, 8, 8) and decoded.abs().max() < 1
