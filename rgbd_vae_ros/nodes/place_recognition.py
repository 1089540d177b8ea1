"""``place_recognition``: latent codes -> loop-closure candidates for a SLAM back end (SPEC §4.6).

Subscribes ``latent`` (+ ``latent/info``, latched: the quantiser table of q8/q4 codes, and the
per-dimension range the codes are standardised by) and publishes, for each latent whose best earlier
keyframe outside ``recent_window`` scores at least ``min_score``, a ``sensor_msgs/TimeReference`` on
``place/match``: ``header`` = the latent's, ``time_ref`` = the matched keyframe's stamp, ``source`` =
``score=<s>; model=<id>``. The index is :class:`rgbd_vae_ros.places.PlaceIndex`; it starts afresh
when the codes come from another model (another model's codes mean something else) or the stamps go
back (a bag played again), and each such restart is counted on ``/diagnostics``.
"""

from __future__ import annotations

import math
import threading

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, SetParametersResult
from sensor_msgs.msg import CompressedImage, TimeReference

from rgbd_vae_ros.frames import Frame, stamp_ns
from rgbd_vae_ros.latent import LatentError, Quantiser, parse_format, parse_info_message, parse_latent_message
from rgbd_vae_ros.places import PlaceIndex

from .base import PerceptionNode, StartError, run_node
from .processors import LATENT_INFO, Q_CODECS, Outputs, Param, Processor, Wanted

MATCH_TOPIC = "place/match"
# name -> (default, description, (low, high) or None); every one applies from the next latent
PLACE_PARAMETERS = {
    # 0.9: above every wrong match (0.883) of the tiny VAE's plain-cosine codes on the benchmark walk
    "min_score": (0.9, "cosine similarity a match must reach to be published (-1..1)", (-1.0, 1.0)),
    "recent_window": (10.0, "seconds before a latent whose keyframes it is never matched to", (0.0, 86400.0)),
    "keyframe_distance": (0.02, "cosine distance (1 - similarity) a code moves from the last keyframe before it is "
                                "kept as a new keyframe (0..2)", (0.0, 2.0)),
    # off: on the benchmark walk standardising raised recall@1 but lowered recall at full precision
    "standardise": (False, "score codes standardised by the model's quantiser range from latent/info (centre and "
                          "half-width per dimension) instead of raw; a change starts the index afresh", None),
}


class PlaceRecognizer(Processor):
    """latent (+ latent/info) -> place/match (sensor_msgs/TimeReference): for each latent, the best earlier
    keyframe outside the recent window whose cosine score passes min_score (SPEC §4.6).

    place parameters: min_score (default 0.9), recent_window (s, default 10), keyframe_distance (cosine
    distance, default 0.02), standardise (default false); the model parameters below are not used."""

    inputs = ("latent",)
    outputs = {MATCH_TOPIC: TimeReference}
    side_inputs = {LATENT_INFO: CompressedImage}

    def __init__(self, param: Param):
        super().__init__(param)
        self.lock = threading.Lock()  # side inputs arrive on the executor, latents on the worker
        self.quantisers: dict[str, Quantiser] = {}  # model id -> table of its latest latent/info
        self.model: str | None = None  # the model whose codes the index holds
        self.standardised_by: Quantiser | None = None
        self.index = self._new_index()
        self.counts.update(keyframes=0, matches=0)

    def _new_index(self) -> PlaceIndex:
        return PlaceIndex(self.param("min_score"), self.param("recent_window"), self.param("keyframe_distance"))

    def side_input(self, topic: str, msg) -> None:
        try:
            model, quantiser = parse_info_message(msg)
        except LatentError as exc:
            self.note("latent_info_rejected", str(exc))
            return
        with self.lock:
            self.quantisers[model] = quantiser

    def _restart(self, reason: str | None, model: str) -> None:
        """A fresh index for ``model``'s codes, standardised by its quantiser range when asked and known."""
        if reason:
            self.note("index_restarted", reason)
        self.index, self.model = self._new_index(), model
        quantiser = self.quantisers.get(model) if self.param("standardise") else None
        if quantiser is not None:
            lo, hi = quantiser.lo.astype(float), quantiser.hi.astype(float)
            self.index.set_normalisation((lo + hi) / 2, (hi - lo) / 2)
        self.standardised_by = quantiser

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        msg = frame.image
        fmt = parse_format(msg.format)
        with self.lock:
            quantiser = self.quantisers.get(fmt.model)
            if fmt.codec in Q_CODECS and quantiser is None:
                raise LatentError(f"latent in codec {fmt.codec} of model {fmt.model} and no latent/info of that model "
                                  "yet (its quantiser table)")
            if quantiser is not None and quantiser.dim != fmt.dim:
                raise LatentError(f"latent has dim {fmt.dim} but the latent/info of model {fmt.model} {quantiser.dim}")
            _, mu, _ = parse_latent_message(msg, quantiser)
            stamp = stamp_ns(msg)
            wanted_table = quantiser if self.param("standardise") else None
            if self.model != fmt.model:
                self._restart(f"codes of model {fmt.model} after model {self.model}" if self.model else None,
                              fmt.model)
            elif wanted_table != self.standardised_by:
                self._restart(None if self.index.dim is None else "the standardisation changed "
                              "(latent/info or the standardise parameter)", fmt.model)
            elif self.index.dim is not None and self.index.dim != fmt.dim:
                self._restart(f"codes of dim {fmt.dim} after dim {self.index.dim}", fmt.model)
            if self.index.last_stamp_ns is not None and stamp < self.index.last_stamp_ns:
                self._restart("the latent stamps went back (a bag played again?)", fmt.model)
            index = self.index
            index.min_score = float(self.param("min_score"))
            index.recent_window_ns = int(round(self.param("recent_window") * 1e9))
            index.keyframe_distance = float(self.param("keyframe_distance"))
            try:
                match = index.add(stamp, mu)
            except ValueError as exc:  # a code without direction: it cannot be scored, nor published as a place
                raise LatentError(str(exc)) from None
            self.counts["keyframes"] = len(index)
        if match is None:
            return []
        self.counts["matches"] += 1
        reference = TimeReference(header=msg.header, source=f"score={match.score:.4f}; model={fmt.model}")
        reference.time_ref.sec, reference.time_ref.nanosec = divmod(match.stamp_ns, 1_000_000_000)
        return [(MATCH_TOPIC, reference)]

    def describe(self) -> dict[str, str]:
        return {"backend": "numpy", "device": "cpu", "model_latent": self.model or "none yet",
                "scoring": "standardised cosine" if self.standardised_by is not None else "cosine"}


class PlaceRecognitionNode(PerceptionNode):
    processor_cls = PlaceRecognizer

    def __init__(self, **kwargs):
        super().__init__("place_recognition", **kwargs)
        # declared before autostart configures (on the first spin); overrides (-p, parameter_overrides)
        # apply here and a value out of range ends the executable with one sentence
        for name, (default, description, bounds) in PLACE_PARAMETERS.items():
            extra = {} if bounds is None else {"floating_point_range": [FloatingPointRange(
                from_value=bounds[0], to_value=bounds[1], step=0.0)]}
            self.declare_parameter(name, default, ParameterDescriptor(description=description, **extra))
            bad = self._check_place_parameters([self.get_parameter(name)])
            if not bad.successful:
                raise StartError(f"parameter {bad.reason}")
        self.add_on_set_parameters_callback(self._check_place_parameters)

    def _check_place_parameters(self, parameters) -> SetParametersResult:
        for p in parameters:
            if p.name in PLACE_PARAMETERS and PLACE_PARAMETERS[p.name][2] is not None:
                if not isinstance(p.value, float) or not math.isfinite(p.value):
                    return SetParametersResult(successful=False, reason=f"{p.name} must be a finite number")
        return SetParametersResult(successful=True)


def main(args=None) -> int:
    return run_node(PlaceRecognitionNode, args)
