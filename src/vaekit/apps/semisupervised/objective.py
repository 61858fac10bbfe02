"""M2's objective (Kingma, Rezende, Mohamed & Welling 2014, "Semi-supervised learning with deep
generative models") over the core's ``SemiSupervisedVAE`` (``vaekit.models``, family "m2"). It is
passed to the one training loop, ``vaekit.train.fit(..., objective=..., plan=LabelledUnlabelled(y))``.

Generative model p(y) p(z) p(x|y,z) with p(y) the model's ``log_class_prior`` (uniform over the K
classes in the paper; the estimator's default takes the labelled rows' class shares); inference model
q(y|x) q(z|x,y).
A labelled example contributes the bound L(x,y) <= log p(x,y) (eq. 6); an unlabelled one the bound
U(x) = sum_y q(y|x) L(x,y) + H(q(y|x)) <= log p(x) (eq. 7), summing over every class; the classifier
also learns from labels with weight alpha (eq. 9). ``y == -1`` marks an unlabelled row throughout.
"""

from __future__ import annotations

import torch
from torch.distributions import Categorical

from vaekit.models import SemiSupervisedVAE
from vaekit.objectives import Terms, elbo


def unwrap(model):
    """The module inside a DistributedDataParallel wrapper (forward calls go through the wrapper)."""
    return getattr(model, "module", model)


def labelled_bound(model: SemiSupervisedVAE, x: torch.Tensor, y: torch.Tensor, *, beta: float = 1.0):
    """L(x,y) = E_q[log p(x|y,z)] + log p(y) - beta KL(q(z|x,y) || p(z)) (eq. 6), (B,) nats;
    also returns E_q[log p(x|y,z)], the KL and log p(y)."""
    t = elbo(model, x, y)
    log_py = unwrap(model).log_class_prior[y]
    return t.log_px_z - beta * t.kl + log_py, t.log_px_z, t.kl, log_py


def unlabelled_bound(model: SemiSupervisedVAE, x: torch.Tensor, qy: Categorical, *, beta: float = 1.0):
    """U(x) = sum_y q(y|x) L(x,y) + H(q(y|x)) (eq. 7), summing over all K classes, (B,) nats;
    also returns E_q(y|x) of E_q[log p(x|y,z)], of the KL and of log p(y)."""
    B, K = len(x), unwrap(model).n_classes
    ys = torch.arange(K, device=x.device).repeat_interleave(B)  # (K*B,) class-major
    xs = x.expand(K, *x.shape).reshape(K * B, *x.shape[1:])  # (K*B, ...)
    terms = labelled_bound(model, xs, ys, beta=beta)
    probs = qy.probs.T  # (K, B)
    bound, log_px_z, kl, log_py = ((probs * v.reshape(K, B)).sum(0) for v in terms)  # E_q(y|x)[.], (B,) each
    return bound + qy.entropy(), log_px_z, kl, log_py


def m2_objective(model: SemiSupervisedVAE, x: torch.Tensor, y: torch.Tensor, *, alpha: float,
                 labelled_fraction: float | None = None, beta: float = 1.0, free_bits: float = 0.0) -> Terms:
    """J^alpha / N (Kingma et al. 2014, eq. 9) on a batch mixing labelled rows and rows with y == -1:

        loss = f E_l[-L(x,y)] + (1 - f) E_u[-U(x)] + alpha f E_l[-log q(y|x)],

    with f the share of labelled examples in the whole training set (``labelled_fraction``; default:
    the share in this batch), so one labelled and one unlabelled batch estimate the full-data objective
    without bias; the paper uses alpha = 0.1 N. A classifier with a ``penalty()`` (``WideClassifier``)
    adds it to the loss. ``elbo`` is L(x,y) <= log p(x,y) for labelled rows and
    U(x) <= log p(x) for unlabelled ones (nats, with beta = 1). Free bits do not apply.
    """
    lab = y >= 0
    n_lab, n_unl = int(lab.sum()), int((~lab).sum())
    f = n_lab / len(y) if labelled_fraction is None else labelled_fraction
    m2 = unwrap(model)
    qy = m2.classify(x)  # (B,); a wide classifier also reads the side values
    penalty = getattr(m2.classifier, "penalty", None)
    loss = torch.zeros((), device=x.device) if penalty is None else penalty()
    x = m2.data_part(x)
    bound, log_px_z, kl = (torch.zeros(len(y), device=x.device) for _ in range(3))  # (B,) each
    if n_lab:
        yl = y[lab]
        l_beta, lp, k, log_py = labelled_bound(model, x[lab], yl, beta=beta)
        nll_y = -qy.log_prob(y.clamp(min=0))[lab]  # (B_l,) classification loss
        loss = loss + f * (-l_beta.mean() + alpha * nll_y.mean())
        bound[lab], log_px_z[lab], kl[lab] = (lp - k + log_py).float(), lp.float(), k.float()
    if n_unl:
        qu = Categorical(logits=qy.logits[~lab])
        u_beta, lp, k, log_py = unlabelled_bound(model, x[~lab], qu, beta=beta)
        loss = loss + (1 - f) * -u_beta.mean()
        bound[~lab] = (lp - k + log_py + qu.entropy()).float()
        log_px_z[~lab], kl[~lab] = lp.float(), k.float()
    return Terms(loss, bound, log_px_z, kl)


def m1_samples(objective):
    """For M1+M2: rows hold (loc, scale) of q(z1|x) stacked on axis 1, shape (B, 2, L1); each call
    draws z1 = loc + scale * eps and applies ``objective`` to it (Kingma et al. 2014, section 3.2)."""
    def wrapped(model, x, y=None, **kwargs):
        loc, scale = x.unbind(1)
        return objective(model, loc + scale * torch.randn_like(scale), y, **kwargs)
    return wrapped


def check_labels(y: torch.Tensor, n: int, n_classes: int) -> None:
    """Labels are integers in [0, n_classes) or -1 (unlabelled), one per row, at least one labelled."""
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y must be 1-D with one label per row of x ({n}), got shape {tuple(y.shape)}.")
    if bool(((y < -1) | (y >= n_classes)).any()):
        raise ValueError(f"Labels must be -1 (unlabelled) or in [0, {n_classes}); got values "
                         f"from {int(y.min())} to {int(y.max())}.")
    if not bool((y >= 0).any()):
        raise ValueError("No labelled rows: every label is -1; label at least one example per class.")
