"""fastxent: cross-entropy losses and their gradients straight from the
caller's buffers: no one-hot labels, no (rows x classes) temporaries."""
from ._config import config, show_config
from ._version import __version__
# objectives for scikit-learn-style estimators (issue 7)
from .objective import BinomialLoss, LinearModelObjective, MultinomialLoss
from .sparse import (
    sparse_softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits_and_grad,
)

__all__ = [
    "__version__",
    # objectives (issue 7)
    "BinomialLoss",
    "LinearModelObjective",
    "MultinomialLoss",
    "config",
    "show_config",
    "sparse_softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits_and_grad",
]
