"""Coverage of sampled answers: the unbiased pass@k estimator and the share of samples that give the modal answer.

pass@k of a problem with n samples of which c are right is the chance that k of them drawn without replacement
hold at least one right one: ``1 - C(n - c, k) / C(n, k)`` (Chen et al., 2021), computed as
``1 - prod_{i = n-c+1}^{n} (1 - k / i)`` (no large binomials), and 1 when ``n - c < k``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from steerlib.core.checks import check_array, check_nonempty, check_range, check_type


def pass_at_k(n: int, c, k: int) -> np.ndarray:
    """The unbiased pass@k of problems with ``n`` samples each and ``c`` right ones (an int or an array of them);
    ``k`` from 1 to ``n``."""
    check_range("n", n, 1, integer=True)
    check_range("k", k, 1, n, integer=True)
    c = check_array("c", c, 0, n, integer=True).astype(int)
    out = np.ones(c.shape, dtype=float)
    for idx, right in np.ndenumerate(c):
        if n - right >= k:
            out[idx] = 1.0 - np.prod(1.0 - k / np.arange(n - right + 1, n + 1))
    return out


def modal_share(answers: Sequence) -> float:
    """The share of ``answers`` (one problem's sampled answers; None for a response without one) that give its most
    frequent answer, None excluded from the mode but counted in the total (0 if no sample has an answer)."""
    check_type("answers", answers, (list, tuple), "a list of one problem's sampled answers")
    check_nonempty("answers", answers)
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][1] / len(answers) if counts else 0.0
