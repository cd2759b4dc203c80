"""The one parser of the spec mini-languages: grammar accepted and refused, messages naming the value."""

import pytest

from packrat_sim import spec
from packrat_sim.errors import PackratError


class Custom(ValueError):
    """A caller's own error class."""


def message_of(raised: type[Exception], parse, /, *args, **kwargs) -> str:
    """The message of the ``raised`` error that ``parse(*args, **kwargs)`` raises (it must raise one)."""
    with pytest.raises(raised) as info:
        parse(*args, **kwargs)
    return str(info.value)


# ---- numbers with units


def test_durations_in_seconds_and_milliseconds():
    assert spec.parse_duration_s("20s") == 20.0
    assert spec.parse_duration_s("500ms") == 0.5
    assert spec.parse_duration_s("2min") == 120.0
    assert spec.parse_duration_s(" 1.5 ") == 1.5
    assert spec.parse_duration_s("1h") == 3600.0
    assert spec.parse_duration_ms("250ms") == 250.0
    assert spec.parse_duration_ms("60s") == 60_000.0
    assert spec.parse_duration_ms("10us") == pytest.approx(0.01)
    assert spec.parse_duration_ms("0") == 0.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("2m", "duration '2m' is not a duration (a number with unit s, ms, us, min or h, e.g. 60s)"),
        ("", "duration '' is not a duration"),
        ("s", "duration 's' is not a duration"),
        ("-1s", "duration '-1s' is negative"),
        ("1e999", "duration '1e999' is not finite"),
    ],
)
def test_a_bad_duration_is_refused_naming_it(text, message):
    assert message_of(PackratError, spec.parse_duration_s, text).startswith(message)


def test_positive_refuses_zero_and_the_error_class_is_the_callers():
    assert spec.parse_duration_s("0s") == 0.0
    with pytest.raises(Custom, match=r"^period '0s' must be > 0$"):
        spec.parse_duration_s("0s", "period", positive=True, error=Custom)
    with pytest.raises(Custom, match=r"^rate '0/s' must be > 0$"):
        spec.parse_rate_per_s("0/s", positive=True, error=Custom)


def test_rates_per_second():
    assert spec.parse_rate_per_s("400/s") == 400.0
    assert spec.parse_rate_per_s("2/ms") == 2000.0
    assert spec.parse_rate_per_s("120/min") == 2.0
    assert spec.parse_rate_per_s("7") == 7.0
    with pytest.raises(PackratError, match=r"^rate 'x/s' is not a rate \(a number with unit /s, /ms, /min or /h"):
        spec.parse_rate_per_s("x/s")
    with pytest.raises(PackratError, match="base '3/day' is not a rate"):
        spec.parse_rate_per_s("3/day", "base")


def test_counts_and_bool_words():
    assert spec.parse_count("64", "batch") == 64
    assert spec.parse_count("+8", "batch") == 8
    for bad in ("0", "-1", "1.5", "x", ""):
        with pytest.raises(PackratError, match=f"^batch must be a positive integer, got {bad!r}$"):
            spec.parse_count(bad, "batch")
    assert [spec.bool_word(w) for w in ("true", "YES", "1", "false", "No", "0")] == [True] * 3 + [False] * 3
    assert spec.bool_word("maybe") is None and spec.bool_word(" true") is None


# ---- integer lists: one grammar, two dialects


def test_an_ordered_int_list_keeps_order_and_repeats_and_skips_empty_items():
    assert spec.parse_int_list("4,1-3, 8,4", "b") == [4, 1, 2, 3, 8, 4]
    assert spec.parse_int_list("1,,2,", "b") == [1, 2]


def test_a_sorted_int_list_is_distinct_and_increasing():
    assert spec.parse_int_list("4,1-3, 8,4", "b", sort_unique=True) == [1, 2, 3, 4, 8]
    assert spec.parse_int_list(" 2 - 3 ", "b", sort_unique=True) == [2, 3]


#: How each dialect is asked for in the tests below: the error it raises, and parse_int_list's arguments.
DIALECTS = {
    "ordered": (Custom, ("batch sizes",), {"error": Custom}),
    "sorted": (PackratError, ("--threads",), {"sort_unique": True}),
}


@pytest.mark.parametrize(
    "dialect, text, message",
    [
        # the ordered dialect names the bad item
        ("ordered", "1,x", "batch sizes: 'x' is not a positive integer (or a range like 1-4)"),
        ("ordered", "0", "batch sizes: '0' is not a positive integer (or a range like 1-4)"),
        ("ordered", "3-1", "batch sizes: '3-1' is not a positive integer (or a range like 1-4)"),
        ("ordered", "-1", "batch sizes: '-1' is not a positive integer (or a range like 1-4)"),
        ("ordered", " , ", "batch sizes: give at least one positive integer, e.g. 1,2,4"),
        # the sorted dialect names the list, and the first value below one
        ("sorted", "1,x", "--threads must be a list like 1,2,4 or a range like 1-8, got '1,x'"),
        ("sorted", "3-1", "--threads must be a list like 1,2,4 or a range like 1-8, got '3-1'"),
        ("sorted", "1,,2", "--threads must be a list like 1,2,4 or a range like 1-8, got '1,,2'"),
        ("sorted", "", "--threads must be a list like 1,2,4 or a range like 1-8, got ''"),
        ("sorted", "0-2", "--threads must be positive integers, got 0 in '0-2'"),
        ("sorted", "4,0,x", "--threads must be positive integers, got 0 in '4,0,x'"),
    ],
)
def test_each_dialect_names_what_is_wrong_with_a_bad_list(dialect, text, message):
    raised, args, kwargs = DIALECTS[dialect]
    assert message_of(raised, spec.parse_int_list, text, *args, **kwargs) == message


# ---- items, key=value, kind:items


def test_items_split_on_commas_with_a_chosen_rule_for_empty_ones():
    assert spec.split_items(" a, b ,c", "x") == ["a", "b", "c"]
    assert spec.split_items("  ", "x") == []
    assert spec.split_items("a,,b", "x", empty="skip") == ["a", "b"]
    assert spec.split_items("a, ,b", "x", empty="keep") == ["a", "", "b"]
    assert spec.split_items(" a,,b", "x", empty="keep", strip=False) == [" a", "", "b"]
    assert spec.split_items(" a,,b", "x", empty="skip", strip=False) == [" a", "b"]
    with pytest.raises(PackratError, match=r"^list 'a,,b' has an empty item \(two commas or a trailing comma\)$"):
        spec.split_items("a,,b", "list 'a,,b'")


def test_key_value_items():
    assert spec.key_value(" clients = 2 ") == ("clients", "2")
    assert spec.key_value("path=a=b") == ("path", "a=b")
    assert spec.key_value("flag=") == ("flag", "")
    assert spec.key_value("replicas") is None and spec.key_value(" =3") is None
    assert spec.split_key_value("k=v", "--param") == ("k", "v")
    with pytest.raises(Custom, match=r"^--param expects NAME=VALUE, not 'replicas'$"):
        spec.split_key_value("replicas", "--param", error=Custom)
    with pytest.raises(Custom, match=r"^--param expects NAME=VALUE, not '=3'$"):
        spec.split_key_value("=3", "--param", error=Custom)


def test_key_values_refuse_duplicates_empty_keys_and_unknown_keys_naming_them():
    assert spec.parse_key_values("A=1, b = two", "options") == {"a": "1", "b": "two"}
    assert spec.parse_key_values("", "options") == {}
    cases = [
        ("a=1,a=2", "option 'a' is given twice in 'a=1,a=2'"),
        ("=1", "options expects NAME=VALUE, not '=1'"),
        ("a", "options expects NAME=VALUE, not 'a'"),
        ("a=", "option 'a' has no value in 'a='"),
        ("a=1,,b=2", "options 'a=1,,b=2' has an empty item (two commas or a trailing comma)"),
    ]
    for text, message in cases:
        assert message_of(PackratError, spec.parse_key_values, text, "options") == message
    with pytest.raises(PackratError, match=r"^unknown option 'c' in options; known: a, b$"):
        spec.parse_key_values("a=1,c=2", "options", keys=("a", "b"))


KINDS = {"poisson": ("rate", "duration"), "steps": ("max_batch",), "trace": ("path", "unit")}
EXAMPLE = "poisson:rate=40/s,duration=60s"


def kind_spec(text):
    return spec.parse_kind_spec(text, "workload", KINDS, example=EXAMPLE, leading_positional=("trace",))


def test_a_kind_spec_gives_its_kind_options_and_bare_items():
    assert kind_spec(" Poisson:Rate=40/s, duration=60s") == ("poisson", {"rate": "40/s", "duration": "60s"}, ())
    assert kind_spec("steps:8/s@20s,32/s@20s,max_batch=8") == ("steps", {"max_batch": "8"}, ("8/s@20s", "32/s@20s"))
    assert kind_spec("steps:") == ("steps", {}, ())
    # a leading file path may hold '=' unless its key is one of the kind's
    assert kind_spec("trace:a=b.csv,unit=ms") == ("trace", {"unit": "ms"}, ("a=b.csv",))
    assert kind_spec("trace:path=a.csv") == ("trace", {"path": "a.csv"}, ())


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the workload spec is empty; e.g. poisson:rate=40/s,duration=60s"),
        ("rate=1", "workload 'rate=1' must start with one of poisson:, steps:, trace: (e.g. poisson:rate=40/s,duration=60s)"),
        ("closed:batch=1", "workload 'closed:batch=1' must start with one of poisson:, steps:, trace:"),
        ("poisson:rate=1,,duration=2", "workload 'poisson:rate=1,,duration=2' has an empty item"),
        ("poisson:speed=3,rate=1,rate=2", "unknown option 'speed' in poisson workload; known: rate, duration"),
        ("poisson:rate=1,rate=2,speed=3", "option 'rate' is given twice in 'poisson:rate=1,rate=2,speed=3'"),
        ("poisson:rate=,duration=1s", "option 'rate' has no value in 'poisson:rate=,duration=1s'"),
        ("poisson:=3", "unknown option '' in poisson workload"),
    ],
)
def test_a_bad_kind_spec_is_refused_naming_the_bad_part(text, message):
    assert message_of(Custom, spec.parse_kind_spec, text, "workload", KINDS, example=EXAMPLE, error=Custom).startswith(message)


# ---- ladders


def test_ladders():
    assert spec.parse_ladder("100..300/100", max_points=10) == ["100", "200", "300"]
    assert spec.parse_ladder("0.5..1.5/0.5ms", max_points=10) == ["0.5ms", "1ms", "1.5ms"]
    assert spec.parse_ladder("0..2", max_points=10) == ["0", "1", "2"]
    assert spec.parse_ladder("100/s", max_points=10) is None
    for text, message in [
        ("5..1", "ladder '5..1': 1 is below 5"),
        ("1..5/0", "ladder '1..5/0': the step must be > 0"),
        ("0..10", "ladder '0..10' has 11 points (more than 10)"),
    ]:
        assert message_of(Custom, spec.parse_ladder, text, max_points=10, error=Custom) == message


def test_a_grid_with_powers_of_two_reads_a_range_as_the_powers_it_holds():
    assert spec.parse_int_list("1-64", "--batches", sort_unique=True, powers_of_two=True) == [1, 2, 4, 8, 16, 32, 64]
    assert spec.parse_int_list("3-20,3,12", "--batches", sort_unique=True, powers_of_two=True) == [3, 4, 8, 12, 16]
    with pytest.raises(PackratError, match="--batches must be positive integers, got 0"):
        spec.parse_int_list("0-8", "--batches", sort_unique=True, powers_of_two=True)
