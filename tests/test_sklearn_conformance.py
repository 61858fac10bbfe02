"""scikit-learn's own estimator checks on vaekit.VAE, where they apply. The checks that cannot pass
are listed with the reason, so a new failure is noticed."""

from __future__ import annotations

import warnings

from sklearn.utils.estimator_checks import check_estimator

import vaekit

EXPECTED_FAILURES = {
    # score_samples is an importance-weighted estimate: a row's z draws depend on its position in the
    # call (the estimate is deterministic for the same rows, within Monte Carlo noise otherwise)
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    # the model computes in float32, whatever the input dtype
    "check_transformer_preserve_dtypes",
    # an object array holding dicts is refused with a ValueError, not the TypeError this check wants
    "check_dtype_object",
}


def test_vae_passes_scikit_learns_estimator_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(vaekit.VAE(latent_dim=2, hidden=(8,), epochs=1, k=3), on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert len(results) > 40
    assert failed <= EXPECTED_FAILURES, sorted(failed - EXPECTED_FAILURES)
