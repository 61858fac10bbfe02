"""Data augmentation for tables: synthetic rows of a chosen class, for classifiers on rare classes.

    extra = augment_table(train, "income", 2000, classes=[">50K"])
    train_aug = pd.concat([train, extra], ignore_index=True)

Rows come from a ``TabularSynthesizer`` fitted on the whole table (every class helps learn the
columns' joint law), conditioned on the class (``conditions={column: value}``), so the class
column holds only the asked value.
"""

from __future__ import annotations

import pandas as pd

from vaekit import checks


def augment_table(frame: pd.DataFrame, column: str, n_per_class: int, *, classes=None, model=None,
                  random_state: int | None = 0, **fit_params) -> pd.DataFrame:
    """``n_per_class`` synthetic rows for each class in ``classes`` (default: every class but the most
    frequent) of the class ``column``, as a data frame with the table's columns. ``model``: a fitted
    ``TabularSynthesizer``; without one, a new one is fitted on ``frame`` with ``fit_params``."""
    from vaekit.apps.tables.synthesizer import TabularSynthesizer

    n = checks.integer("n_per_class", n_per_class, low=1)
    if not isinstance(frame, pd.DataFrame):
        raise ValueError("augment on a table needs a pandas DataFrame and the name of its class column.")
    if column not in frame.columns:
        raise ValueError(f"{column!r} is not a column of the table; its columns are {list(frame.columns)[:10]}.")
    counts = frame[column].value_counts()
    if classes is None:
        classes = list(counts.index[1:])
        if not classes:
            raise ValueError(f"Column {column!r} has a single class; name the classes to add with classes=[...].")
    elif isinstance(classes, str) or not hasattr(classes, "__iter__"):
        classes = [classes]
    if model is None:
        model = TabularSynthesizer(random_state=random_state, **fit_params).fit(frame)
    elif not hasattr(model, "table_"):
        raise ValueError("model must be a fitted TabularSynthesizer; call fit first or pass model=None.")
    parts = [model.sample(n, conditions={column: value},
                          random_state=None if random_state is None else random_state + i)
             for i, value in enumerate(classes)]
    return pd.concat(parts, ignore_index=True)
