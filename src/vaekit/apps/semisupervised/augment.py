"""Class-conditional generation and data augmentation.

``conditional_sample`` draws from any model with ``decode(z, y)`` and a ``prior`` (the core
``vaekit.ConditionalVAE`` or the semi-supervised ``SemiSupervisedVAE``): z ~ p(z), then p(x|y,z).
``augment(X, y, n_per_class)`` returns synthetic labelled examples from a class-conditional model.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.inference_mode()
def conditional_sample(model, y: torch.Tensor, *, mean: bool = True, seed: int | None = None) -> torch.Tensor:
    """One example per label in ``y`` (integer class indices): z ~ p(z), then E[x|y,z] (``mean=True``)
    or x ~ p(x|y,z). Returns (len(y), *event_shape) on the CPU; ``seed`` makes it repeatable."""
    n_classes = getattr(model, "n_classes", 0)
    if not n_classes:
        raise ValueError("conditional_sample needs a model conditioned on class labels (n_classes > 0).")
    y = torch.as_tensor(y).long().reshape(-1)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"Class indices must be in [0, {n_classes}); got {int(y.min())} to {int(y.max())}.")
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        z = model.sample_latent(len(y)).to(device)  # (N, L)
        px = model.decode(z, y.to(device))
        x = model.likelihood.mean(px) if mean else model.likelihood.sample(px)
    return x.float().cpu()


def augment(X, y, n_per_class: int, *, model=None, mean: bool = False, random_state: int | None = 0,
            **fit_params):
    """Synthetic labelled examples: ``n_per_class`` new rows for every class, as (X_new, y_new).

    ``model`` is a fitted ``SemiSupervisedClassifier``; without one, a new one is fitted on (X, y)
    (``y == -1`` marks unlabelled rows, which help too) with ``fit_params``. ``mean=False`` draws
    x ~ p(x|y,z) (varied, realistic noise); ``mean=True`` gives the decoded means E[x|y,z].

    Tables: ``augment(frame, "income", 2000, classes=[">50K"])`` (a data frame and the name of its class
    column) returns a data frame of ``n_per_class`` synthetic rows per chosen class (default: every
    class but the most frequent), from a ``TabularSynthesizer`` (``model``, or one fitted on the frame);
    see ``vaekit.apps.tables.augment``.
    """
    if isinstance(y, str) and hasattr(X, "columns"):
        from vaekit.apps.tables.augment import augment_table

        if mean:
            raise ValueError("mean=True is for arrays; synthetic table rows are always drawn from the model.")
        return augment_table(X, y, n_per_class, model=model, random_state=random_state, **fit_params)
    from vaekit.apps.semisupervised.estimator import SemiSupervisedClassifier

    n = int(n_per_class)
    if n < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}.")
    if model is None:
        model = SemiSupervisedClassifier(random_state=random_state, **fit_params).fit(X, y)
    elif not hasattr(model, "classes_"):
        raise ValueError("model must be a fitted SemiSupervisedClassifier; call fit first or pass model=None.")
    y_new = np.repeat(model.classes_, n)
    X_new = model.sample(len(y_new), y=y_new, mean=mean, random_state=random_state)
    return X_new, y_new
