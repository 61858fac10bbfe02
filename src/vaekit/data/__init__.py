"""Data loading: ``load(source, config) -> Dataset`` for built-ins, arrays, tables, IDX, .mat and
image folders; ``read_array``/``write_array`` for the files the command line reads and writes."""

from vaekit.data.builtins import BUILTINS, DEFAULTS
from vaekit.data.dataset import SPLITS, DataConfig, DataMeta, Dataset, load

__all__ = ["BUILTINS", "DEFAULTS", "SPLITS", "DataConfig", "DataMeta", "Dataset", "load"]
