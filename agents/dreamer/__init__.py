"""The dreamer: explores candidate plans for each task, has critics judge them, refines."""

from .dreamer import Dreamer
from .options import DreamerOptions

__all__ = ["Dreamer", "DreamerOptions"]
