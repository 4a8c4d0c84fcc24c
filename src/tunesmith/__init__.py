"""tunesmith: train, sample, evaluate and serve deep generative models of music."""
__version__ = "0.1.0"

from .errors import TunesmithError  # noqa: F401
