"""One trainer for likelihood, adversarial and variational objectives."""
from .checkpoint import load_run  # noqa: F401
from .trainer import train  # noqa: F401
