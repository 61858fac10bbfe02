"""Feature learning: how linearly useful are embeddings (``transform``) for a downstream task?"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaekit.estimators import check_array


def linear_probe(Z_train, y_train, Z_test, y_test, *, C: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy (0..1) of a logistic regression trained on standardised features ``Z_train``.

    The usual yardstick for representations: compare ``model.transform(X)`` with PCA or raw inputs of
    the same dimension. Rows with label -1 (unlabelled) in ``y_train`` are left out.
    """
    Z_train, Z_test = check_array(Z_train, name="Z_train"), check_array(Z_test, name="Z_test")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(y_train) != len(Z_train) or len(y_test) != len(Z_test):
        raise ValueError("Give one label per row: y_train must match Z_train and y_test must match Z_test.")
    if Z_train.shape[1:] != Z_test.shape[1:]:
        raise ValueError(f"Z_train has {Z_train.shape[1:]} features per row but Z_test has {Z_test.shape[1:]}.")
    keep = y_train != -1
    if len(np.unique(y_train[keep])) < 2:
        raise ValueError("y_train needs labelled rows of at least two classes for a linear probe.")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(Z_train[keep].reshape(int(keep.sum()), -1), y_train[keep])
    return float(probe.score(Z_test.reshape(len(Z_test), -1), y_test))
