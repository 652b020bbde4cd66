"""fastxent: cross-entropy losses and their gradients straight from the
caller's buffers: no one-hot labels, no (rows x classes) temporaries."""
from ._config import config, show_config
from ._version import __version__
from .sparse import (
    sparse_softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits_and_grad,
)
# the sigmoid / binary family
from .keras_binary import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    binary_crossentropy,
    binary_crossentropy_and_grad,
    binary_focal_crossentropy,
)
from .sigmoid import (
    sigmoid_cross_entropy_with_logits,
    sigmoid_cross_entropy_with_logits_and_grad,
    sigmoid_cross_entropy_with_logits_and_hessian,
    weighted_cross_entropy_with_logits,
    weighted_cross_entropy_with_logits_and_grad,
)

__all__ = [
    "__version__",
    "config",
    "show_config",
    "sparse_softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits_and_grad",
    # the sigmoid / binary family
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "binary_crossentropy",
    "binary_crossentropy_and_grad",
    "binary_focal_crossentropy",
    "sigmoid_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits_and_grad",
    "sigmoid_cross_entropy_with_logits_and_hessian",
    "weighted_cross_entropy_with_logits",
    "weighted_cross_entropy_with_logits_and_grad",
]
