"""The self-describing latent message (SPEC §4.3): formats, codecs, the quantiser and refusals."""

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from rgbd_vae_ros.latent import (CODECS, LatentError, LatentFormat, Quantiser, build_info_message,
                                 build_latent_message, decode, encode, model_id, parse_format, parse_info_message,
                                 parse_latent_message)

MODEL = "0123456789ab"
DIM = 9  # odd: q4's last byte holds one dimension


def _quantiser(dim=DIM):
    return Quantiser(np.linspace(-3, -1, dim).astype(np.float32), np.linspace(1, 4, dim).astype(np.float32))


def _mu(dim=DIM, seed=0):
    q = _quantiser(dim)
    return np.random.default_rng(seed).uniform(q.lo, q.hi).astype(np.float32)


def test_the_format_string_is_the_specs_with_keys_in_order():
    fmt = LatentFormat(64, "q8", "measured", MODEL)
    assert str(fmt) == "rgbd_vae_latent; v=1; dim=64; codec=q8; depth=measured; model=0123456789ab"
    assert parse_format(str(fmt)) == fmt
    for codec in CODECS:
        for depth in ("measured", "estimated", "none"):
            assert parse_format(str(LatentFormat(3, codec, depth, MODEL))) == LatentFormat(3, codec, depth, MODEL)


MALFORMED = {
    "empty": ("", "does not start with"),
    "other_prefix": ("rgbd_vae_latent_info; v=1; dim=4; model=0123456789ab", "does not start with"),
    "keys_swapped": ("rgbd_vae_latent; v=1; codec=q8; dim=4; depth=none; model=0123456789ab", "keys in this order"),
    "missing_model": ("rgbd_vae_latent; v=1; dim=4; codec=q8; depth=none", "keys in this order"),
    "extra_key": ("rgbd_vae_latent; v=1; dim=4; codec=q8; depth=none; model=0123456789ab; x=1", "keys in this order"),
    "no_space": ("rgbd_vae_latent;v=1;dim=4;codec=q8;depth=none;model=0123456789ab", "does not start with"),
    "empty_value": ("rgbd_vae_latent; v=1; dim=; codec=q8; depth=none; model=0123456789ab", "keys in this order"),
    "version_2": ("rgbd_vae_latent; v=2; dim=4; codec=q8; depth=none; model=0123456789ab", "v=2 is not the v=1"),
    "dim_zero": ("rgbd_vae_latent; v=1; dim=0; codec=q8; depth=none; model=0123456789ab", "dim=0"),
    "dim_negative": ("rgbd_vae_latent; v=1; dim=-4; codec=q8; depth=none; model=0123456789ab", "dim=-4"),
    "dim_text": ("rgbd_vae_latent; v=1; dim=four; codec=q8; depth=none; model=0123456789ab", "dim=four"),
    "dim_huge": ("rgbd_vae_latent; v=1; dim=99999999; codec=q8; depth=none; model=0123456789ab", "dim=99999999"),
    "codec": ("rgbd_vae_latent; v=1; dim=4; codec=q2; depth=none; model=0123456789ab", "codec 'q2'"),
    "depth": ("rgbd_vae_latent; v=1; dim=4; codec=q8; depth=lidar; model=0123456789ab", "depth 'lidar'"),
    "model_short": ("rgbd_vae_latent; v=1; dim=4; codec=q8; depth=none; model=0123", "12 lower-case hex"),
    "model_upper": ("rgbd_vae_latent; v=1; dim=4; codec=q8; depth=none; model=0123456789AB", "12 lower-case hex"),
    "model_not_hex": ("rgbd_vae_latent; v=1; dim=4; codec=q8; depth=none; model=0123456789xy", "12 lower-case hex"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_format_is_one_sentence(case):
    text, expected = MALFORMED[case]
    with pytest.raises(LatentError, match=expected) as caught:
        parse_format(text)
    assert "\n" not in str(caught.value)


def test_a_format_that_is_not_text_is_refused():
    with pytest.raises(LatentError, match="expected text"):
        parse_format(None)


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_round_trips_and_has_its_size(codec):
    q, mu = _quantiser(), _mu()
    data = encode(mu, codec, q)
    fmt = LatentFormat(DIM, codec, "none", MODEL)
    assert len(data) == {"f32": 4 * DIM, "f16": 2 * DIM, "q8": DIM, "q4": (DIM + 1) // 2}[codec] == fmt.mu_bytes
    got = decode(data, fmt, q)
    assert got.dtype == np.float32 and got.shape == (DIM,)
    step = (q.hi - q.lo) / {"f32": np.inf, "f16": np.inf, "q8": 256, "q4": 16}[codec]
    if codec == "f32":
        np.testing.assert_array_equal(got, mu)
    elif codec == "f16":
        np.testing.assert_allclose(got, mu, rtol=1e-3, atol=1e-3)
    else:
        assert (np.abs(got - mu) <= step / 2 + 1e-6).all()  # the centre of the code's interval
        assert encode(got, codec, q) == data  # bit-exact: decoding and coding again gives the same codes


def test_q_codes_are_the_specs_formula():
    q = Quantiser(np.zeros(2, np.float32), np.full(2, 16.0, np.float32))
    fmt = LatentFormat(2, "q8", "none", MODEL)
    # value of code c with 8 bits: lo + (c + 0.5)(hi - lo)/256
    np.testing.assert_allclose(decode(bytes([0, 255]), fmt, q), [0.5 * 16 / 256, 255.5 * 16 / 256])
    assert encode(np.array([0.0, 15.99]), "q8", q) == bytes([0, 255])
    assert encode(np.array([8.0, 1.0]), "q4", q) == bytes([8 | (1 << 4)])


def test_q4_packs_the_first_dimension_into_the_low_nibble():
    q = Quantiser(np.zeros(3, np.float32), np.full(3, 16.0, np.float32))  # code c <-> value c + 0.5
    data = encode(np.array([3.5, 12.5, 7.5], np.float32), "q4", q)
    assert data == bytes([0xC3, 0x07])  # hand-packed: dim 0 = 3 low, dim 1 = 12 high; dim 2 = 7 low, pad 0
    np.testing.assert_array_equal(decode(bytes([0x5A]), LatentFormat(2, "q4", "none", MODEL),
                                         Quantiser(np.zeros(2, np.float32), np.full(2, 16.0, np.float32))),
                                  [10.5, 5.5])


def test_values_outside_the_range_saturate_to_the_end_codes():
    q = Quantiser(np.array([-1.0, -1.0], np.float32), np.array([1.0, 1.0], np.float32))
    assert encode(np.array([-50.0, 50.0]), "q8", q) == bytes([0, 255])
    assert encode(np.array([-50.0, 50.0]), "q4", q) == bytes([0xF0])
    got = decode(bytes([0, 255]), LatentFormat(2, "q8", "none", MODEL), q)
    assert got[0] > -1 and got[1] < 1  # inside the range: the end codes' centres


def test_non_finite_or_empty_mu_is_refused():
    for codec in CODECS:
        for bad in (np.array([0.0, np.nan]), np.array([np.inf, 0.0]), np.zeros(0), np.zeros((2, 2))):
            with pytest.raises(LatentError):
                encode(bad, codec, _quantiser(2))


def test_q_codecs_need_a_quantiser_of_the_same_dim():
    with pytest.raises(LatentError, match="needs the model's quantiser table"):
        encode(_mu(), "q8")
    with pytest.raises(LatentError, match="has 4 dimensions and the latent 9"):
        encode(_mu(), "q4", _quantiser(4))
    with pytest.raises(LatentError, match="needs the model's quantiser table"):
        decode(bytes(DIM), LatentFormat(DIM, "q8", "none", MODEL))


@pytest.mark.parametrize("codec", CODECS)
def test_data_of_the_wrong_length_is_refused(codec):
    fmt, q = LatentFormat(DIM, codec, "none", MODEL), _quantiser()
    data = encode(_mu(), codec, q)
    for bad in (data[:-1], data + b"\0", b""):
        with pytest.raises(LatentError, match="bytes"):
            decode(bad, fmt, q)


def test_f16_beyond_its_range_is_refused():
    with pytest.raises(LatentError, match="float16"):
        encode(np.array([1e6], np.float32), "f16")


def test_the_quantiser_refuses_bad_bounds_and_fits_a_robust_range():
    with pytest.raises(LatentError, match="hi <= lo"):
        Quantiser(np.zeros(3), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(LatentError, match="NaN or infinite"):
        Quantiser(np.zeros(2), np.array([1.0, np.inf]))
    with pytest.raises(LatentError, match="equal non-empty"):
        Quantiser(np.zeros(2), np.ones(3))
    rng = np.random.default_rng(1)
    mus = rng.normal(0, [1.0, 3.0], size=(20000, 2))
    mus[0] = [1e3, -1e3]  # one outlier does not widen the range
    q = Quantiser.fit(mus)
    assert q.lo.dtype == q.hi.dtype == np.float32
    np.testing.assert_allclose(q.hi, [3.09, 3 * 3.09], rtol=0.1)  # the 99.9th percentile of a normal
    np.testing.assert_allclose(q.lo, [-3.09, -3 * 3.09], rtol=0.1)
    constant = Quantiser.fit(np.ones((5, 2)))  # a dimension that never moves still has hi > lo
    assert (constant.hi > constant.lo).all() and (constant.lo < 1).all() and (constant.hi > 1).all()
    with pytest.raises(LatentError, match="NaN"):
        Quantiser.fit(np.array([[np.nan, 0.0]]))
    assert Quantiser.from_dict(q.to_dict()) == q and Quantiser.from_dict(q.to_dict()) != constant
    with pytest.raises(LatentError, match="lists 'lo' and 'hi'"):
        Quantiser.from_dict({"lo": 1})


@pytest.mark.parametrize("codec", CODECS)
def test_the_message_round_trips_with_its_header(codec):
    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = 12, 34
    q, mu = _quantiser(), _mu()
    msg = build_latent_message(header, mu, codec=codec, depth="estimated", model=MODEL, quantiser=q)
    assert isinstance(msg, CompressedImage) and msg.header == header
    assert msg.format == f"rgbd_vae_latent; v=1; dim={DIM}; codec={codec}; depth=estimated; model={MODEL}"
    fmt, got, logvar = parse_latent_message(msg, q)
    assert fmt == LatentFormat(DIM, codec, "estimated", MODEL) and logvar is None
    np.testing.assert_allclose(got, decode(encode(mu, codec, q), fmt, q))


@pytest.mark.parametrize("codec", ("f32", "f16"))
def test_logvar_follows_mu_with_float_codecs(codec):
    mu, logvar = _mu(), -np.arange(DIM, dtype=np.float32) / 4
    msg = build_latent_message(None, mu, codec=codec, depth="none", model=MODEL, logvar=logvar)
    assert len(msg.data) == 2 * LatentFormat(DIM, codec, "none", MODEL).mu_bytes
    _, got_mu, got_logvar = parse_latent_message(msg)
    np.testing.assert_allclose(got_mu, mu, rtol=1e-3)
    np.testing.assert_allclose(got_logvar, logvar, rtol=1e-3)


def test_logvar_is_refused_with_q_codecs_and_of_another_length():
    for codec in ("q8", "q4"):
        with pytest.raises(LatentError, match="only with codec f32 or f16"):
            build_latent_message(None, _mu(), codec=codec, depth="none", model=MODEL, quantiser=_quantiser(),
                                 logvar=np.zeros(DIM))
    with pytest.raises(LatentError, match="one per dimension"):
        build_latent_message(None, _mu(), codec="f32", depth="none", model=MODEL, logvar=np.zeros(DIM - 1))


def test_bad_messages_are_refused():
    good = build_latent_message(None, _mu(), codec="f32", depth="none", model=MODEL)
    nan = CompressedImage(format=good.format, data=np.full(DIM, np.nan, "<f4").tobytes())
    with pytest.raises(LatentError, match="NaN"):
        parse_latent_message(nan)
    short = CompressedImage(format=good.format, data=bytes(good.data)[:-4])
    with pytest.raises(LatentError, match=f"takes {4 * DIM} or {8 * DIM}"):
        parse_latent_message(short)
    jpeg = CompressedImage(format="jpeg", data=bytes(good.data))
    with pytest.raises(LatentError, match="does not start with"):
        parse_latent_message(jpeg)
    with pytest.raises(LatentError, match="codec"):
        build_latent_message(None, _mu(), codec="q2", depth="none", model=MODEL)
    with pytest.raises(LatentError, match="depth"):
        build_latent_message(None, _mu(), codec="f32", depth="guessed", model=MODEL)


def test_the_info_message_round_trips_and_refuses_what_is_not_one():
    q = _quantiser()
    msg = build_info_message(None, q, MODEL)
    assert msg.format == f"rgbd_vae_latent_info; v=1; dim={DIM}; model={MODEL}"
    assert bytes(msg.data) == q.lo.astype("<f4").tobytes() + q.hi.astype("<f4").tobytes()
    model, got = parse_info_message(msg)
    assert model == MODEL
    np.testing.assert_array_equal(got.lo, q.lo)
    np.testing.assert_array_equal(got.hi, q.hi)
    for data, expected in ((bytes(msg.data)[:-4], "bytes"),
                           (np.concatenate([q.hi, q.lo]).astype("<f4").tobytes(), "hi <= lo")):
        with pytest.raises(LatentError, match=expected):
            parse_info_message(CompressedImage(format=msg.format, data=data))
    with pytest.raises(LatentError, match="does not start with"):
        parse_info_message(CompressedImage(format=str(LatentFormat(DIM, "f32", "none", MODEL)), data=msg.data))


def test_the_model_id_is_the_start_of_the_checkpoint_hash():
    assert model_id("ABCDEF0123456789" + "0" * 48) == "abcdef012345"
    for bad in ("", "xyz", None):
        with pytest.raises(LatentError, match="SHA-256"):
            model_id(bad)
