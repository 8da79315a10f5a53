"""One vocabulary for every verdict in the book, decided by one function.

Why one function: a reader compares claims across chapters, so "supported" must mean the
same thing on every page. A claim is an expected sign of an estimate; the verdict reads the
estimate's 95 % confidence interval:

- *not testable here* — the run cannot speak to the claim (random weights, synthetic data);
  the reason is part of the status;
- *supported* — the interval excludes zero on the claimed side;
- *contradicted* — the interval excludes zero on the other side;
- *direction as claimed* — the estimate has the claimed sign, the interval includes zero;
- *inconclusive* — anything else (opposite sign but not excluded, or no estimate).

Checks on synthetic brain data recover *planted* structure; they never support a claim
about the brain, so they get their own two words: *planted structure recovered / not
recovered*.
"""

from __future__ import annotations

import math

NOT_TESTABLE = "not testable here"
INCONCLUSIVE = "inconclusive"
DIRECTION = "direction as claimed"
SUPPORTED = "supported"
CONTRADICTED = "contradicted"
STATUSES = (NOT_TESTABLE, INCONCLUSIVE, DIRECTION, SUPPORTED, CONTRADICTED)

RECOVERED = "planted structure recovered"
NOT_RECOVERED = "planted structure not recovered"


def _finite(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def verdict(estimate: float | None, ci_low: float | None, ci_high: float | None, *,
            expected_sign: int, untestable: str | None = None) -> str:
    """The status of a claim that ``estimate`` has sign ``expected_sign`` (+1 or -1).

    ``untestable`` names why this run cannot test the claim (e.g. "random weights"); when
    given, the status is "not testable here (<reason>)" whatever the numbers say.
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, got {expected_sign!r}")
    if untestable:
        return f"{NOT_TESTABLE} ({untestable})"
    if not _finite(estimate):
        return INCONCLUSIVE
    if _finite(ci_low) and _finite(ci_high):
        lo, hi = (ci_low, ci_high) if ci_low <= ci_high else (ci_high, ci_low)
        if (lo > 0 and expected_sign > 0) or (hi < 0 and expected_sign < 0):
            return SUPPORTED
        if (lo > 0 and expected_sign < 0) or (hi < 0 and expected_sign > 0):
            return CONTRADICTED
    return DIRECTION if estimate * expected_sign > 0 else INCONCLUSIVE


def recovery(recovered: bool) -> str:
    """The status of a check on synthetic data with planted structure."""
    return RECOVERED if recovered else NOT_RECOVERED


def base_status(status: str) -> str:
    """The vocabulary word of a status (drops the reason of 'not testable here (…)')."""
    return NOT_TESTABLE if status.startswith(NOT_TESTABLE) else status
