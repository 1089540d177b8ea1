"""The one exception of the inference layer."""


class BackendError(RuntimeError):
    """A model file or backend that cannot run: missing, truncated, foreign, mismatched, or a
    backend whose package or device is absent. The message is one sentence naming the problem."""
