"""The validation module: each check accepts good values in their canonical type and rejects
the rest with one message format naming ``what`` and the value, as the caller's error class."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from packrat_sim import validate
from packrat_sim.errors import PackratError


class CustomError(PackratError):
    """A module's own error class, as callers pass it."""


def _rejects(check, value, what, text, *args, **kwargs):
    with pytest.raises(CustomError) as err:
        check(value, what, *args, error=CustomError, **kwargs)
    assert str(err.value) == f"{what} must be {text}, got {value!r}"


def test_the_message_names_what_and_the_value():
    assert validate.message("--batch", "a positive integer", 0) == "--batch must be a positive integer, got 0"
    assert validate.message("model", "a non-empty string", "") == "model must be a non-empty string, got ''"


def test_integer_accepts_ints_within_bounds_and_numpy_ints_when_asked():
    assert validate.integer(3, "n") == 3
    assert validate.integer(-3, "n") == -3
    assert validate.integer(1, "n", low=1) == 1
    got = validate.integer(np.int64(7), "n", low=1, high=7, numpy=True)
    assert got == 7 and type(got) is int
    assert validate.positive_int(np.int32(2), "n", numpy=True) == 2
    assert validate.nonnegative_int(np.uint8(0), "n", numpy=True) == 0
    _rejects(validate.integer, np.int64(7), "n", "an integer")
    _rejects(validate.positive_int, np.int64(0), "n", "a positive integer", numpy=True)


@pytest.mark.parametrize("value", [True, False, 2.0, 2.5, "3", None, math.nan, math.inf, [1]])
def test_integer_rejects_what_is_not_an_integer(value):
    _rejects(validate.integer, value, "--count", "an integer")


def test_an_expected_text_replaces_the_default_one():
    _rejects(validate.integer, 0, "--jobs", "at least 1", low=1, expected="at least 1")
    _rejects(validate.finite, -1.0, "--timeout", "a number of seconds > 0", above=0, expected="a number of seconds > 0")


def test_the_default_error_class_is_packrat_error_a_value_error():
    with pytest.raises(PackratError, match=re.escape("n must be an integer >= 0, got -1")):
        validate.nonnegative_int(-1, "n")
    assert issubclass(PackratError, ValueError)


def test_positive_and_nonnegative_ints():
    assert validate.positive_int(1, "b") == 1
    assert validate.nonnegative_int(0, "w") == 0
    for value in (0, -1, True, 1.0, "1", math.nan):
        _rejects(validate.positive_int, value, "--batch", "a positive integer")
    for value in (-1, False, 0.0, "0", math.inf):
        _rejects(validate.nonnegative_int, value, "warmup", "an integer >= 0")


def test_finite_accepts_real_numbers_and_returns_floats():
    for value in (0, 2, 2.5, -1e300, np.float32(1.5), np.int64(4)):
        got = validate.finite(value, "x")
        assert got == float(value) and type(got) is float
    assert validate.finite(1.0, "x", low=1.0, high=1.0) == 1.0


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, "1.5", None, 10**400, [1.0]])
def test_finite_rejects_bools_non_finite_values_and_non_numbers(value):
    _rejects(validate.finite, value, "alpha", "a finite number")


@pytest.mark.parametrize(
    "check, what, value, bounds, expected",
    [
        (validate.integer, "depth", 0, {"low": 1}, "an integer >= 1"),
        (validate.integer, "depth", 10, {"high": 9}, "an integer <= 9"),
        (validate.integer, "depth", 0, {"low": 1, "high": 9}, "an integer in 1..9"),
        (validate.integer, "depth", 10, {"low": 1, "high": 9}, "an integer in 1..9"),
        (validate.finite, "alpha", -0.5, {"low": 0}, "a finite number >= 0"),
        (validate.finite, "alpha", 0, {"above": 0}, "a finite number > 0"),
        (validate.finite, "alpha", 2, {"high": 1}, "a finite number <= 1"),
        (validate.finite, "alpha", 0, {"above": 0, "high": 1}, "a finite number in (0, 1]"),
        (validate.finite, "alpha", 1.5, {"low": 0, "high": 1}, "a finite number in [0, 1]"),
    ],
)
def test_integer_and_finite_reject_values_out_of_bounds_naming_the_bounds(check, what, value, bounds, expected):
    _rejects(check, value, what, expected, **bounds)


def test_positive_and_nonnegative_floats():
    assert validate.positive_float(0.25, "rate") == 0.25
    assert validate.nonnegative_float(0, "think") == 0.0
    for value in (0, -1.0, True, math.nan, math.inf, "2"):
        _rejects(validate.positive_float, value, "rate", "a finite number > 0")
    for value in (-1e-9, False, math.nan, -math.inf, "0"):
        _rejects(validate.nonnegative_float, value, "think", "a finite number >= 0")


def test_name_accepts_non_blank_strings():
    assert validate.name("resnet50", "model") == "resnet50"
    for value in ("", "   ", None, 3, True, b"x"):
        _rejects(validate.name, value, "model", "a non-empty string")


def test_one_of_names_the_choices():
    assert validate.one_of("ray", "--engine", ("serial", "local", "ray")) == "ray"
    _rejects(validate.one_of, "warp", "--engine", "one of serial, local", ("serial", "local"))
    _rejects(validate.one_of, True, "mode", "one of a, b", ["a", "b"])
