"""Statistics the chapters' claims are judged with."""
from __future__ import annotations

import numpy as np
from scipy import stats


def spearman(x, y) -> float:
    """Spearman rank correlation of two sequences (NaN if either is constant)."""
    return float(stats.spearmanr(np.asarray(x), np.asarray(y)).statistic)
