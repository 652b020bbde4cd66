"""fastxent: cross-entropy losses and their gradients straight from the
caller's buffers: no one-hot labels, no (rows x classes) temporaries."""
from ._config import config, show_config
from ._version import __version__
# objectives for scikit-learn-style estimators (issue 7)
from .objective import BinomialLoss, LinearModelObjective, MultinomialLoss
# fused linear + cross-entropy (issue 6)
from .linear import linear_cross_entropy, linear_cross_entropy_and_grad
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
# --- the softmax family (soft targets, Hessian, primitives, Keras categorical) ---
from .softmax import (
    cross_entropy,
    cross_entropy_and_grad,
    softmax_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_and_grad,
    softmax_cross_entropy_with_logits_grad_hess,
    sparse_softmax_cross_entropy_with_logits_grad_hess,
)
from .primitives import log_softmax, logsumexp, softmax, target_log_prob
from .keras_categorical import (
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalCrossentropy,
    categorical_crossentropy,
    categorical_crossentropy_and_grad,
    categorical_focal_crossentropy,
    sparse_categorical_crossentropy,
    sparse_categorical_crossentropy_and_grad,
    sparse_categorical_focal_crossentropy,
)
# --- focal losses' gradients (binary, categorical, sparse categorical) ---
from .keras_binary import binary_focal_crossentropy_and_grad
from .keras_categorical import (
    categorical_focal_crossentropy_and_grad,
    sparse_categorical_focal_crossentropy_and_grad,
)

__all__ = [
    "__version__",
    # objectives (issue 7)
    "BinomialLoss",
    "LinearModelObjective",
    "MultinomialLoss",
    "config",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
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
    # the softmax family
    "cross_entropy", "cross_entropy_and_grad",
    "softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_and_grad",
    "softmax_cross_entropy_with_logits_grad_hess", "sparse_softmax_cross_entropy_with_logits_grad_hess",
    "logsumexp", "log_softmax", "softmax", "target_log_prob",
    "categorical_crossentropy", "categorical_focal_crossentropy", "sparse_categorical_crossentropy",
    "sparse_categorical_focal_crossentropy", "categorical_crossentropy_and_grad",
    "sparse_categorical_crossentropy_and_grad", "CategoricalCrossentropy", "CategoricalFocalCrossentropy",
    "SparseCategoricalCrossentropy",
    # focal losses' gradients
    "binary_focal_crossentropy_and_grad", "categorical_focal_crossentropy_and_grad",
    "sparse_categorical_focal_crossentropy_and_grad",
]
