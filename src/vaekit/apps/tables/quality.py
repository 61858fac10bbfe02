"""``quality_report(real, synthetic)``: how good a synthetic table is, in the measures practitioners know.

- Column shapes and column-pair trends: SDMetrics' single-table ``QualityReport`` (KS / TV complement
  per column; correlation / contingency similarity per pair of related columns); its score is their mean.
- ML efficacy (with ``holdout`` and ``target``): one gradient-boosted classifier trained on the
  synthetic rows and one on the real rows, both tested on the held-out real rows (F1 of the positive,
  i.e. less frequent, class for two classes; macro F1 otherwise; and accuracy).
- Privacy (with ``holdout``): SDMetrics' ``DCROverfittingProtection`` (share of synthetic rows closer
  to a training row than to a held-out row; 1.0 = no closer than chance), and exact copies: the share
  of synthetic rows equal to a training row, against the share of held-out rows equal to one.

Returns a ``QualityReport``: ``summary`` (a data frame of measures), the per-column and per-pair
details, and ``to_html(path)`` with real-vs-synthetic plots per column.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class QualityReport:
    summary: pd.DataFrame  # measure, value, note
    column_shapes: pd.DataFrame
    column_pairs: pd.DataFrame
    metadata: dict
    real: pd.DataFrame = field(repr=False)
    synthetic: pd.DataFrame = field(repr=False)

    @property
    def score(self) -> float:
        """SDMetrics' quality score in [0, 1], higher is better."""
        return float(self.summary.set_index("measure").loc["quality score", "value"])

    def value(self, measure: str) -> float:
        table = self.summary.set_index("measure")
        return float(table.loc[measure, "value"]) if measure in table.index else float("nan")

    def to_frame(self) -> pd.DataFrame:
        return self.summary.copy()

    def to_html(self, path: str | Path, *, title: str = "Synthetic data quality") -> Path:
        from vaekit.apps.tables.report_html import write_html

        return write_html(self, Path(path), title=title)


def infer_metadata(frame: pd.DataFrame) -> dict:
    """SDMetrics metadata from dtypes: numbers, booleans, datetimes; everything else categorical."""
    columns = {}
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_bool_dtype(col):
            kind = "boolean"
        elif pd.api.types.is_datetime64_any_dtype(col):
            kind = "datetime"
        elif pd.api.types.is_numeric_dtype(col):
            kind = "numerical"
        else:
            kind = "categorical"
        columns[str(c)] = {"sdtype": kind}
    return {"columns": columns}


def check_pair(real, synthetic) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name, t in (("real", real), ("synthetic", synthetic)):
        if not isinstance(t, pd.DataFrame):
            raise ValueError(f"{name} must be a pandas DataFrame, got {type(t).__name__}.")
        if len(t) == 0:
            raise ValueError(f"The {name} table has no rows.")
    missing = [c for c in real.columns if c not in synthetic.columns]
    if missing:
        raise ValueError(f"The synthetic table lacks column(s) {missing[:5]} of the real table; compare tables "
                         "with the same columns.")
    return real, synthetic[list(real.columns)]


def align_types(synthetic: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """The synthetic table in the real table's dtypes where they differ (e.g. read back from CSV)."""
    out = synthetic.copy()
    for c in real.columns:
        if str(out[c].dtype) == str(real[c].dtype):
            continue
        try:
            if pd.api.types.is_datetime64_any_dtype(real[c]):
                out[c] = pd.to_datetime(out[c])
            elif pd.api.types.is_numeric_dtype(real[c]) and not pd.api.types.is_bool_dtype(real[c]):
                out[c] = pd.to_numeric(out[c], errors="coerce")
            else:
                out[c] = out[c].astype(real[c].dtype)
        except (TypeError, ValueError):
            pass
    return out


def quality_report(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: dict | None = None, *,
                   holdout: pd.DataFrame | None = None, target: str | None = None, max_rows: int = 50_000,
                   privacy_rows: int = 2000, random_state: int = 0) -> QualityReport:
    """Column shapes, column-pair trends, and with ``holdout`` privacy (and with ``target`` too, ML
    efficacy) of ``synthetic`` against ``real`` (the training rows). Larger tables are subsampled to
    ``max_rows`` rows for the SDMetrics measures, and to ``privacy_rows`` rows (each of training, synthetic
    and held-out) for the distance to the closest record, which compares every pair. ``metadata``: SDMetrics' single-table metadata
    ({"columns": {name: {"sdtype": ...}}}); inferred from the real table's dtypes when None."""
    with warnings.catch_warnings():  # the single-table report is the one SDGym's published scores use
        warnings.simplefilter("ignore", FutureWarning)
        from sdmetrics.reports.single_table import QualityReport as SDQuality

    real, synthetic = check_pair(real, synthetic)
    synthetic = align_types(synthetic, real)
    metadata = metadata or infer_metadata(real)
    if target is not None and target not in real.columns:
        raise ValueError(f"target {target!r} is not a column of the real table.")
    r, s = subsample(real, max_rows, random_state), subsample(synthetic, max_rows, random_state + 1)
    report = SDQuality()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(r, s, metadata, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    rows = [("quality score", report.get_score(), "SDMetrics QualityReport: mean of the two properties"),
            ("column shapes", props["Column Shapes"], "KS complement (numbers, dates), TV complement (categories)"),
            ("column pair trends", props["Column Pair Trends"],
             "correlation / contingency similarity of the related pairs" if np.isfinite(props["Column Pair Trends"])
             else "none: no pair of columns is related in the real table (SDMetrics scores only related pairs)")]
    if holdout is not None:
        holdout = align_types(check_pair(real, holdout)[1], real)
        if target is not None:
            syn_f1, syn_acc = ml_efficacy(synthetic, holdout, target, reference=real, random_state=random_state)
            real_f1, real_acc = ml_efficacy(real, holdout, target, reference=real, random_state=random_state)
            rows += [("ML efficacy F1 (train synthetic)", syn_f1, f"target {target}, tested on the held-out rows"),
                     ("ML efficacy F1 (train real)", real_f1, "the same classifier trained on the real rows"),
                     ("ML efficacy accuracy (train synthetic)", syn_acc, ""),
                     ("ML efficacy accuracy (train real)", real_acc, "")]
        n = min(max_rows, privacy_rows, len(real), len(holdout))  # equal sizes: 50% "closer" is chance
        rows += privacy(real, synthetic, holdout, metadata, max_rows=n, random_state=random_state)
    summary = pd.DataFrame(rows, columns=["measure", "value", "note"])
    summary["value"] = summary["value"].astype(float)
    return QualityReport(summary, report.get_details("Column Shapes"), report.get_details("Column Pair Trends"),
                         metadata, real, synthetic)


def subsample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= n else frame.sample(n, random_state=seed).reset_index(drop=True)


def features(frame: pd.DataFrame, reference: pd.DataFrame, target: str) -> pd.DataFrame:
    """Classifier inputs: numbers as floats, dates as days, other columns as categories fixed by the
    reference (real) table so every training set sees the same codes."""
    out, frame = {}, frame.reset_index(drop=True)
    for c in reference.columns:
        if c == target:
            continue
        col, ref = frame[c], reference[c]
        if pd.api.types.is_datetime64_any_dtype(ref):
            out[c] = pd.to_datetime(col).astype("int64").astype(float) / 86400e9
        elif pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
            out[c] = pd.to_numeric(col, errors="coerce").astype(float)
        else:
            cats = pd.Index(ref.dropna().astype(str).unique())
            codes = pd.Categorical(col.astype(str).where(col.notna()), categories=cats)
            out[c] = pd.Series(codes) if len(cats) <= 250 else pd.Series(codes.codes.astype(float))
    return pd.DataFrame(out)


def ml_efficacy(train: pd.DataFrame, test: pd.DataFrame, target: str, *, reference: pd.DataFrame,
                random_state: int = 0) -> tuple[float, float]:
    """(F1, accuracy) on ``test`` of a HistGradientBoostingClassifier trained on ``train``. F1 is of
    the reference's less frequent class for two classes, macro otherwise."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, f1_score

    y_train, y_test = train[target].astype(str), test[target].astype(str)
    counts = reference[target].astype(str).value_counts()
    if y_train.nunique() < 2:
        return 0.0, float(accuracy_score(y_test, np.full(len(y_test), y_train.iloc[0])))
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=random_state)
    clf.fit(features(train, reference, target), y_train)
    pred = clf.predict(features(test, reference, target))
    if len(counts) == 2:
        f1 = f1_score(y_test, pred, pos_label=counts.index[-1], zero_division=0)
    else:
        f1 = f1_score(y_test, pred, average="macro", zero_division=0)
    return float(f1), float(accuracy_score(y_test, pred))


def exact_copies(rows: pd.DataFrame, train: pd.DataFrame) -> float:
    """Share of ``rows`` equal, in every column, to some row of ``train`` (missing equals missing)."""
    def keys(t: pd.DataFrame) -> pd.Series:
        return pd.util.hash_pandas_object(t.astype(str).fillna("<NA>"), index=False)
    return float(keys(rows).isin(set(keys(train))).mean())


def privacy(real, synthetic, holdout, metadata, *, max_rows: int, random_state: int) -> list[tuple]:
    from sdmetrics.single_table import DCROverfittingProtection

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = DCROverfittingProtection.compute_breakdown(
            subsample(real, max_rows, random_state), subsample(synthetic, max_rows, random_state + 1),
            subsample(holdout, max_rows, random_state + 2), metadata, None)
    closer = out.get("synthetic_data_percentages", {}).get("closer_to_training", float("nan"))
    return [("DCR overfitting protection", out["score"],
             "SDMetrics: 1.0 = synthetic rows no closer to training rows than to held-out rows"),
            ("synthetic rows closer to training (%)", 100 * closer, "50% is what a fresh sample would give"),
            ("exact copies of training rows (synthetic, %)", 100 * exact_copies(synthetic, real), ""),
            ("exact copies of training rows (held-out real, %)", 100 * exact_copies(holdout, real),
             "the baseline: real rows that repeat by chance")]
