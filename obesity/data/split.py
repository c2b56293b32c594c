"""The seeded train/test split of a validated data set, and the fold check CV needs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from obesity.data.contract import TARGET
from obesity.data.load import Dataset, load_dataset, select_features
from obesity.errors import DataError
from obesity.runtime import current


@dataclass(frozen=True)
class Split:
    """Train and test partitions of features (X) and labels (y); with labelled extra files
    (`data.extra`), their training share is in the train partition and their held-out share is
    the FRESH partition, and `extra_md5` names those files' versions."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    X_fresh: pd.DataFrame | None = None
    y_fresh: pd.Series | None = None
    extra_md5: tuple[str, ...] = ()
    fresh_from: str = ""  # which rows the fresh ones are, in words


def with_extra(split: Split, extras: Sequence[Dataset], holdout: float, seed: int,
               exclude: Sequence[str] = ()) -> Split:
    """`split` plus labelled extra data sets: a seeded `holdout` share of their (deduplicated)
    rows is the fresh partition, the rest joins the training rows. Their rows get index values
    after the original file's, so no row label is shared."""
    frame = pd.concat([d.frame for d in extras], ignore_index=True)
    start = max(int(split.X_train.index.max()), int(split.X_test.index.max())) + 1
    frame.index = pd.RangeIndex(start, start + len(frame))
    X, y = select_features(frame, exclude), frame[TARGET]
    if holdout > 0 and len(frame) > 1:
        from sklearn.model_selection import train_test_split

        X_more, X_fresh, y_more, y_fresh = train_test_split(X, y, test_size=holdout,
                                                            random_state=seed)
    else:
        X_more, y_more, X_fresh, y_fresh = X, y, X.iloc[:0], y.iloc[:0]
    names = ", ".join(f"{d.path.name} (md5 {d.md5[:8]})" for d in extras)
    return Split(pd.concat([split.X_train, X_more]), split.X_test,
                 pd.concat([split.y_train, y_more]), split.y_test, X_fresh, y_fresh,
                 tuple(d.md5 for d in extras),
                 f"held out of {names} by data.extra_holdout={holdout:g}, data.extra_seed={seed}")


def split_dataset(dataset: Dataset, test_size: float, seed: int, stratify: bool = True,
          exclude: Sequence[str] = ()) -> Split:
    """A seeded (and by default label-stratified) train/test split of the deduplicated rows.

    DataError, naming the class and its count, when the data is too small for the split.
    The same split of the same (cached) data set is made once per runtime: sweep trials.
    """
    splits = current().caches.splits
    key = (dataset.md5, str(dataset.path), test_size, seed, stratify, tuple(exclude))
    if key not in splits:
        splits.clear()  # one at a time
        splits[key] = _split(dataset, test_size, seed, stratify, exclude)
    return splits[key]


def _split(dataset: Dataset, test_size: float, seed: int, stratify: bool,
           exclude: Sequence[str]) -> Split:
    X = select_features(dataset.frame, exclude)
    y = dataset.frame[TARGET]
    counts = y.value_counts()
    n_test = math.ceil(test_size * len(y))
    if stratify:
        rare = counts[counts < 2]
        if len(rare):
            raise DataError(f"{dataset.path}: class {rare.index[0]!r} has {rare.iloc[0]} row(s); "
                            "a stratified test split (data.stratify=true) needs at least 2 in "
                            "every class")
        if not len(counts) <= n_test <= len(y) - len(counts):
            raise DataError(f"{dataset.path}: data.test_size={test_size} holds out {n_test} of "
                            f"{len(y)} rows; a stratified split of {len(counts)} classes needs "
                            f"at least {len(counts)} rows on each side")
    from sklearn.model_selection import train_test_split  # here: loading data needs no sklearn

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    if y_train.nunique() < 2:  # stratified or not: a one-class model predicts a constant
        raise DataError(f"{dataset.path}: the training split holds one class only "
                        f"({y_train.iloc[0]!r}, {len(y_train)} rows): a classifier needs at least 2")
    return Split(X_train, X_test, y_train, y_test)


def check_folds(dataset: Dataset, split_: Split, cv_folds: int) -> None:
    """DataError unless every class of the data has `cv_folds` rows in the training split
    (stratified k-fold CV needs one per fold; fewer gives meaningless per-class scores)."""
    counts = split_.y_train.value_counts().reindex(dataset.frame[TARGET].unique(), fill_value=0)
    short = counts[counts < cv_folds].sort_values()
    if len(short):
        raise DataError(f"{dataset.path}: class {short.index[0]!r} has {short.iloc[0]} row(s) in "
                        f"the training split; cv_folds={cv_folds} needs at least {cv_folds} in "
                        "every class (use fewer folds, or more rows of that class)")


class SplitSettings(Protocol):
    """What a split needs of a `data` config (obesity.config.schemas.DataConfig has it)."""

    path: str
    test_size: float
    split_seed: int
    stratify: bool
    extra: list[str]
    extra_holdout: float
    extra_seed: int


def split_of(data_cfg: SplitSettings, exclude: Sequence[str] = ()) -> tuple[Dataset, Split]:
    """The data set a `data` config names and its held-out split (with its `extra` labelled
    files, if any): the one load-and-split sequence of runs, stages, comparisons and twin checks
    (`exclude`: columns left out of X)."""
    dataset = load_dataset(data_cfg.path)
    split = split_dataset(dataset, data_cfg.test_size, data_cfg.split_seed, data_cfg.stratify,
                          exclude)
    if data_cfg.extra:
        split = with_extra(split, [load_dataset(path) for path in data_cfg.extra],
                           data_cfg.extra_holdout, data_cfg.extra_seed, exclude)
    return dataset, split
