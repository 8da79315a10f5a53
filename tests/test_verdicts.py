"""Every status of the one verdict function, on constructed numbers."""

import math

import pytest

from lib import verdicts as v


@pytest.mark.parametrize("est, lo, hi, sign, expected", [
    (0.3, 0.1, 0.5, +1, v.SUPPORTED),          # CI above 0, claimed positive
    (-0.3, -0.5, -0.1, -1, v.SUPPORTED),       # CI below 0, claimed negative
    (0.3, 0.1, 0.5, -1, v.CONTRADICTED),       # CI above 0, claimed negative
    (-0.3, -0.5, -0.1, +1, v.CONTRADICTED),
    (0.1, -0.1, 0.3, +1, v.DIRECTION),         # right sign, CI spans 0
    (-0.1, -0.3, 0.1, -1, v.DIRECTION),
    (-0.1, -0.3, 0.1, +1, v.INCONCLUSIVE),     # wrong sign, CI spans 0
    (0.0, -0.1, 0.1, +1, v.INCONCLUSIVE),      # exactly zero is no direction
    (0.2, None, None, +1, v.DIRECTION),        # no CI: only the sign speaks
    (-0.2, None, None, +1, v.INCONCLUSIVE),
    (None, 0.1, 0.2, +1, v.INCONCLUSIVE),      # no estimate
    (math.nan, 0.1, 0.2, +1, v.INCONCLUSIVE),
    (0.3, 0.5, 0.1, +1, v.SUPPORTED),          # bounds given in the wrong order
])
def test_verdict_statuses(est, lo, hi, sign, expected):
    assert v.verdict(est, lo, hi, expected_sign=sign) == expected


def test_ci_touching_zero_is_not_support():
    assert v.verdict(0.2, 0.0, 0.4, expected_sign=+1) == v.DIRECTION


def test_untestable_overrides_the_numbers_and_keeps_the_reason():
    s = v.verdict(0.3, 0.1, 0.5, expected_sign=+1, untestable="random weights: resnet50")
    assert s == "not testable here (random weights: resnet50)"
    assert v.base_status(s) == v.NOT_TESTABLE
    assert v.base_status(v.SUPPORTED) == v.SUPPORTED


def test_recovery_words_never_say_supported():
    assert v.recovery(True) == "planted structure recovered"
    assert v.recovery(False) == "planted structure not recovered"
    assert all(w not in v.recovery(True) for w in (v.SUPPORTED, v.CONTRADICTED))


def test_bad_expected_sign_is_rejected():
    with pytest.raises(ValueError, match="expected_sign"):
        v.verdict(0.1, 0, 0.2, expected_sign=0)
