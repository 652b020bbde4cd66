"""fastxent: cross-entropy losses and their gradients straight from the
caller's buffers: no one-hot labels, no (rows x classes) temporaries."""
from ._config import config, show_config
from ._version import __version__
# fused linear + cross-entropy (issue 6)
from .linear import linear_cross_entropy, linear_cross_entropy_and_grad
from .sparse import (
    sparse_softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits_and_grad,
)

__all__ = [
    "__version__",
    "config",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
    "show_config",
    "sparse_softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits_and_grad",
]
