"""The safe input layer (packrat_sim.inputs) and the readers routed through it (issue 29,
items 7, 8, 10, 11 and 12): regular files only, bounded, UTF-8 text without NUL, strict JSON,
and CSV rows of the header's width."""

from __future__ import annotations

import json
import os
import threading

import pytest

from packrat_sim.errors import PackratError
from tests.reader_fuzz_helpers import alarm

# ------------------------------------------------------------------------------ helpers


def deadline(seconds: float = 10.0):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``: a blocked
    open() of a FIFO is interrupted by the alarm."""
    return alarm(seconds, lambda: TimeoutError(f"still running after {seconds} s (a FIFO opened?)"))


def fifo(tmp_path, name="pipe"):
    path = tmp_path / name
    os.mkfifo(path)
    return str(path)


# ------------------------------------------------------------------------- read_bytes / text


def test_a_regular_file_is_read_and_its_bom_dropped(tmp_path):
    from packrat_sim.inputs import read_text

    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffhé\n".encode())
    assert read_text(path, "thing") == "hé\n"


@pytest.mark.parametrize("kind", ["directory", "char device", "fifo", "missing"])
def test_what_is_not_a_regular_file_is_refused_before_it_is_opened(tmp_path, kind):
    from packrat_sim.inputs import InputError, read_bytes

    path = {"directory": lambda: str(tmp_path), "char device": lambda: "/dev/zero",
            "fifo": lambda: fifo(tmp_path), "missing": lambda: str(tmp_path / "nope")}[kind]()
    with deadline(), pytest.raises(InputError) as info:
        read_bytes(path, "history")
    message = str(info.value)
    assert message.startswith(f"cannot read history {path!r}: ") and "\n" not in message
    assert {"directory": "a directory", "char device": "a character device", "fifo": "a FIFO",
            "missing": "does not exist"}[kind] in message


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    """os.stat says "regular file", then a FIFO is what gets opened: O_NONBLOCK and fstat refuse it."""
    from packrat_sim import inputs

    pipe = fifo(tmp_path)
    real_stat = os.stat
    monkeypatch.setattr(inputs.os, "stat", lambda p, *a, **k: real_stat(__file__))
    with deadline(), pytest.raises(inputs.InputError, match="FIFO"):
        inputs.read_bytes(pipe, "grid")


def test_reading_is_bounded_naming_the_bound(tmp_path):
    from packrat_sim.inputs import InputError, read_bytes

    path = tmp_path / "big"
    path.write_bytes(b"x" * 1000)
    assert len(read_bytes(path, limit=1000)) == 1000
    with pytest.raises(InputError, match="the limit is 999 bytes"):
        read_bytes(path, "profile", limit=999)


def test_a_growing_file_is_cut_at_the_bound(tmp_path, monkeypatch):
    from packrat_sim import inputs

    path = tmp_path / "grows"
    path.write_bytes(b"x" * 10)
    real_stat = os.stat
    monkeypatch.setattr(inputs.os, "stat", lambda p, *a, **k: os.stat_result((*real_stat(p)[:6], 0, *real_stat(p)[7:])))
    with pytest.raises(inputs.InputError, match="more than 5"):
        inputs.read_bytes(path, limit=5)


def test_the_default_bound_is_a_named_generous_constant():
    from packrat_sim.inputs import MAX_INPUT_BYTES

    assert MAX_INPUT_BYTES == 256 * 1024 * 1024


def test_text_that_is_not_utf8_or_holds_nul_is_refused_naming_the_offset(tmp_path):
    from packrat_sim.inputs import InputError, read_text

    bad = tmp_path / "bad"
    bad.write_bytes(b"abc\xffdef")
    with pytest.raises(InputError, match=r"is not UTF-8 text \(byte 3"):
        read_text(bad, "grid")
    nul = tmp_path / "nul"
    nul.write_bytes(b"ab\x00cd")
    with pytest.raises(InputError, match=r"holds a NUL byte \(byte 2\)"):
        read_text(nul, "grid")


def test_the_caller_chooses_the_error_class():
    from packrat_sim.inputs import read_text
    from packrat_sim.profile import ProfileError

    with pytest.raises(ProfileError, match="does not exist"):
        read_text("/no/such/file", "profile", error=ProfileError)


# ------------------------------------------------------------------------------ strict JSON


@pytest.mark.parametrize("text, fragment", [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"a": NaN}', "NaN"),
    ('[Infinity]', "Infinity"),
    ('[-Infinity]', "-Infinity"),
    ('[1e400]', "overflows to Infinity"),
    ("[" + "9" * 5000 + "]", "5,000 digits"),
    ("[" * 65 + "]" * 65, "nested too deeply"),
    ("[" * 100000, "nested too deeply"),
    ('["\\ud800"]', "lone surrogate"),
    ('{"\\udfff": 1}', "lone surrogate"),
    ("{", "line 1 column 2"),
])
def test_strict_json_refuses_what_json_loads_lets_through(text, fragment):
    from packrat_sim.inputs import InputError, loads_json

    with pytest.raises(InputError) as info:
        loads_json(text)
    message = str(info.value)
    assert fragment in message and message.startswith("not valid JSON: ")
    message.encode("utf-8")  # printable: the surrogate itself is never in the message


def test_strict_json_accepts_what_it_should():
    from packrat_sim.inputs import loads_json

    assert loads_json('{"a": [1, 2.5, "\\ud83d\\ude00", null, true]}') == {"a": [1, 2.5, "\U0001F600", None, True]}
    assert loads_json("[" * 64 + "]" * 64) is not None
    assert loads_json("[" + "9" * 4300 + "]")[0] == int("9" * 4300)


# ----------------------------------------------------------------------- Packrat CSV (item 7)

CSV = ("benchmark,intraop_threads,batch_size,latency(min),latency(avg),latency(max)\n"
       "m,1,1,9,10,11\n"
       "m,2,1,5,6,7\n")


def test_a_packrat_csv_row_with_an_extra_field_is_refused_naming_the_line():
    """Today's tree read t=2,b=1 as t=1,b=2 (the columns shifted by the extra field)."""
    from packrat_sim.profile import ProfileError, import_packrat_csv

    assert import_packrat_csv(CSV).profile.cell(2, 1) is not None
    shifted = CSV.replace("m,2,1,5,6,7", "m,x,2,1,5,6,7")
    with pytest.raises(ProfileError, match=r"line 3: expected 6 fields \(as the header\), got 7"):
        import_packrat_csv(shifted)
    with pytest.raises(ProfileError, match="line 2: expected 6 fields"):
        import_packrat_csv(CSV.replace("m,1,1,9,10,11", "m,1,1,9,10,11,"))


def test_a_corun_csv_row_with_an_extra_field_is_refused_naming_the_line():
    from packrat_sim.corun import CorunError, read_corun_csv

    text = ("benchmark,instances,instance_id,intraop_threads,batch_size,latency(avg)\n"
            "m,2,0,1,4,10\n"
            "m,2,1,1,4,11,12\n")
    with pytest.raises(CorunError, match="line 3: expected 6 fields"):
        read_corun_csv(text)


def test_csv_line_numbers_are_physical_lines():
    """A form feed or U+2028 inside a row does not split it (str.splitlines would)."""
    from packrat_sim.profile import ProfileError, import_packrat_csv

    with pytest.raises(ProfileError, match="line 4: latency"):
        import_packrat_csv(CSV + "m,4,1,\u2028,x,9\n")


# ----------------------------------------------------------------------- profiles (items 8, 11)


def _profile_text(**over) -> str:
    from packrat_sim.profile import builtin_profile

    obj = builtin_profile("cnn-2", max_batch=2).to_json()
    obj.update(over)
    return json.dumps(obj)


def test_a_profile_with_a_huge_integer_is_a_profile_error():
    from packrat_sim.profile import ProfileError, loads_profile

    text = _profile_text().replace('"threads": 1', '"threads": ' + "1" * 5000, 1)
    with pytest.raises(ProfileError, match="5,000 digits"):
        loads_profile(text)


def test_a_profile_whose_model_name_holds_a_lone_surrogate_is_refused():
    from packrat_sim.profile import ProfileError, loads_profile

    with pytest.raises(ProfileError, match="lone surrogate") as info:
        loads_profile(_profile_text(model="net\ud800"))
    str(info.value).encode("utf-8")


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_read_profile_refuses_devices_and_fifos(tmp_path, path):
    from packrat_sim.profile import ProfileError, read_profile

    target = fifo(tmp_path) if path == "fifo" else path
    with deadline(), pytest.raises(ProfileError, match="not a regular file"):
        read_profile(target)


# ------------------------------------------------------------------------- sweep grids (10, 11)


GRID = {"profile": ["builtin:cnn-4"], "cores": [4], "workload": ["poisson:rate=10/s,duration=1s"]}


@pytest.mark.parametrize("text, fragment", [
    ('{"profile": ["builtin:cnn-4"], "cores": [4], "cores": [8], "workload": ["closed:batch=1"]}', "duplicate key 'cores'"),
    ('{"profile": ["builtin:cnn-4"], "profiles": ["builtin:cnn-8"], "cores": [4]}', "gives axis 'profile' twice"),
    ('{"profile": ["builtin:cnn-4"], "cores": [' + "4" * 5000 + "]}", "5,000 digits"),
    ('{"profile": ["builtin:cnn-4"], "cores": [NaN]}', "NaN"),
    ('{"profile": ["builtin:cnn-4"], "cores": ' + "[" * 200 + "]" * 200 + "}", "nested too deeply"),
])
def test_json_grids_are_read_strictly(tmp_path, text, fragment):
    from packrat_sim.sweep import SweepError, load_grid

    path = tmp_path / "grid.json"
    path.write_text(text)
    with pytest.raises(SweepError, match=fragment):
        load_grid(str(path))


@pytest.mark.parametrize("data, fragment", [
    (b"profile = ['builtin:cnn-4']\ncores = [4\xff]\n", "not UTF-8 text"),
    (b"profile = ['builtin:cnn-4']\x00\ncores = [4]\n", "NUL"),
    (b"profile = ['builtin:cnn-4']\ncores = [" + b"4" * 5000 + b"]\n", "not valid TOML"),
    (b"profile = ['builtin:cnn-4']\ncores = [nan]\n", "not a finite number"),
    (b"profile = ['builtin:cnn-4']\ncores = " + b"[" * 2000 + b"]" * 2000 + b"\n", "nested too deeply"),
])
def test_toml_grids_are_text_and_bounded(tmp_path, data, fragment):
    from packrat_sim.sweep import SweepError, load_grid

    path = tmp_path / "grid.toml"
    path.write_bytes(data)
    with pytest.raises(SweepError, match=fragment):
        load_grid(str(path))


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_a_grid_that_is_a_device_or_fifo_is_refused(tmp_path, path):
    from packrat_sim.sweep import SweepError, load_grid

    target = fifo(tmp_path, "grid.toml") if path == "fifo" else path
    with deadline(), pytest.raises(SweepError, match="not a regular file"):
        load_grid(target)


def test_grid_ladders_and_counts_of_thousands_of_digits_are_errors():
    from packrat_sim.sweep import SweepError, make_grid
    from packrat_sim.workload import WorkloadError, parse_workload

    with pytest.raises(SweepError, match="more than 100 digits"):
        make_grid({**GRID, "cores": ["1.." + "9" * 5000]})
    with pytest.raises(WorkloadError, match="at most 30 digits"):
        parse_workload("closed:clients=1,batch=" + "9" * 5000)
    with pytest.raises(SweepError, match="more than"):
        make_grid({**GRID, "workload": ["poisson:rate=0..1e308/1e-300/s,duration=1s"]})


# ----------------------------------------------------------------------- trace files (item 12)


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_a_trace_file_that_is_a_device_or_fifo_is_refused(tmp_path, path):
    from packrat_sim.workload import WorkloadError, load_workload

    target = fifo(tmp_path, "t.csv") if path == "fifo" else path
    with deadline(), pytest.raises(WorkloadError, match="not a regular file"):
        load_workload(f"trace:{target}")


# ---------------------------------------------------------------------- plan files (item 11)


def test_a_plan_file_with_a_huge_integer_or_nan_is_one_clean_error(tmp_path):
    from ui.cli.verify import load_plan_file

    plan = {"schema": "packrat.plan/1", "batch": 4, "cores": 4,
            "instances": [{"threads": 4, "batch": 4, "cores": []}], "predicted_ms": 1.0}
    path = tmp_path / "plan.json"
    for bad, fragment in (('"batch": ' + "4" * 5000, "5,000 digits"), ('"batch": NaN', "NaN")):
        path.write_text(json.dumps(plan).replace('"batch": 4', bad, 1))
        with pytest.raises(PackratError, match=fragment):
            load_plan_file(str(path))


def test_reading_in_another_thread_needs_no_signal(tmp_path):
    """The layer uses no signal or alarm itself: it works off the main thread (the dashboard)."""
    from packrat_sim.inputs import InputError, read_bytes

    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(InputError, read_bytes, fifo(tmp_path))))
    t.start()
    t.join(10)
    assert not t.is_alive() and errors


def test_read_json_names_the_file(tmp_path):
    from packrat_sim.inputs import InputError, read_json

    path = tmp_path / "x.json"
    path.write_text('{"a": 1, "a": 2}')
    with pytest.raises(InputError, match=r"^grid '.*x.json': not valid JSON: duplicate key 'a' in the grid"):
        read_json(path, "grid")
    path.write_text('{"a": [1]}')
    assert read_json(path, "grid") == {"a": [1]}
