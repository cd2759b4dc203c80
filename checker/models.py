"""Sequential specifications that histories are checked against.

A :class:`Model` is a small protocol, with defaults filled once here rather than at every call:

``init() -> state``
    The initial state. States must be hashable; ``==`` and ``hash()`` are the model's equality
    (the checker memoises on them).
``step(state, input, output) -> (legal, next_state)``
    Apply one operation. ``input``/``output`` are the values returned by ``compile``; ``output`` is
    :data:`~checker.history.UNKNOWN_OUTPUT` for a pending operation or an unobserved result, and a
    model must then accept every output the operation could have produced.
``compile(input, output) -> (input, output)``
    Called once per operation before the search: validates the operation (raising ``ValueError``
    with a message naming the bad value) and converts it into whatever form ``step`` is fastest
    with. Default: identity.
``partition(input) -> key``
    Optional (P-compositionality): operations with different keys never interact, and ``step`` is
    then only ever called with the operations of one key, starting from ``init()``.
``read_only(input, output) -> bool``
    Optional (raw input and output): the operation, with this output, never changes the state
    (whenever it is legal). Pending read-only operations are dropped before the search (they can
    always be linearized without effect), and a completed read-only operation that is legal in the
    current state is linearized at once, without trying the alternatives (it could be moved to the
    front of any linearization that follows).
``read_value(input, output) -> value``
    Optional (compiled input and output, for read-only operations): the one state in which the
    operation can be legal (``step`` is still asked), or :data:`NOT_A_READ` when there is no such
    value (an unknown output, a failed cas). When every read-only operation of a partition has a
    value (and there are enough of them to pay for it), the search only tries the reads whose value
    equals the current state (same verdicts and evidence, fewer steps). Values must be hashable,
    with ``==`` the model's state equality.
``resets(input) -> bool`` and ``reaches(state, value) -> bool``
    Optional, together (compiled inputs; for models with ``read_value``): ``reaches(s, t)`` must be
    True whenever state ``t`` can follow state ``s`` through operations none of which ``resets``
    (a necessary condition: it may say True where ``t`` cannot follow, never False where it can).
    The search then drops a configuration in which the read whose return comes first needs a
    state that ``reaches`` says cannot follow the current one while no operation that ``resets``
    is left to run before that read: no linearization goes through it (same verdicts and, on
    linearizable histories, the same linearization; fewer steps where many writes race, such as
    Porcupine's append-heavy kv logs). kv: a put resets, and an append only extends the value.
``describe_operation(input, output) -> str`` / ``describe_state(state) -> str``
    Text for explanations and the HTML page (raw, uncompiled input and output).

Nondeterministic specifications are written as a :class:`NondeterministicModel` whose ``init``
returns the possible initial states and whose ``step`` returns the set of possible next states
(empty: illegal); :meth:`NondeterministicModel.to_model` turns it into a :class:`Model` over sets
of states (the power-set construction).

Built-in models (:data:`MODELS`), with the inputs the history readers produce:

``register``
    ``{"op": "read"} -> value`` and ``{"op": "write", "value": v} -> (ignored)``. Starts at None.
``cas-register``
    ``register`` plus ``{"op": "cas", "from": a, "to": b} -> true | false``: succeeds (and sets b)
    exactly when the register holds a.
``kv``
    ``{"op": "get", "key": k} -> string`` (``""`` when unset; null reads as ``""``),
    ``{"op": "put", "key": k, "value": s}``, ``{"op": "append", "key": k, "value": s}``;
    partitioned by key. A key keeps its JSON type (:func:`kv_key`): ``"1"``, ``1``, ``1.0`` and
    ``true`` are four keys.
``serving``
    DESIGN.md's reconfiguration spec. The state is the current epoch, 0 at the start.
    ``{"op": "reconfigure", "plan": ...} -> {"epoch": e'}`` moves the epoch to e', which must be
    greater than the current one (normally current + 1; a pending reconfigure moves it to some
    unknown epoch greater than the current one). ``{"op": "infer", "batch": id, "size": B} ->
    {"epoch": e, "digest": ...}`` must report the epoch current at its linearization point. An infer
    output may instead list the epoch of each sub-batch, ``{"epochs": [e1, e2, ...]}``; a batch that
    reports more than one distinct epoch ran across a reconfiguration and is illegal in every state.
    Digests are not checked.

Values compared by the register models are frozen first (:func:`freeze`): lists and dicts become
hashable, and ``true`` never equals ``1``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from checker.history import UNKNOWN_OUTPUT
from packrat_sim import validate
from packrat_sim.errors import PackratError

__all__ = [
    "MODELS",
    "NOT_A_READ",
    "KvKey",
    "Model",
    "ModelError",
    "NondeterministicModel",
    "cas_register_model",
    "freeze",
    "get_model",
    "kv_key",
    "kv_model",
    "register_model",
    "serving_model",
]


class ModelError(PackratError):
    """An operation does not fit the model, or the model is unknown; the message names it."""


class _NotARead:
    """The type of :data:`NOT_A_READ` (one instance; prints as ``NOT_A_READ``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_A_READ"


#: What ``Model.read_value`` returns for an operation with no single state it can be legal in.
NOT_A_READ: Any = _NotARead()


def _identity_compile(inp: Any, out: Any) -> tuple[Any, Any]:
    return inp, out


def _short_repr(value: Any, limit: int = 60) -> str:
    if value is UNKNOWN_OUTPUT:
        return "?"
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _default_describe_operation(inp: Any, out: Any) -> str:
    return f"{_short_repr(inp)} -> {_short_repr(out)}"


def _default_describe_state(state: Any) -> str:
    return _short_repr(state)


@dataclass(frozen=True)
class Model:
    """A deterministic sequential specification (see the module docstring for the protocol)."""

    name: str
    init: Callable[[], Hashable]
    step: Callable[[Any, Any, Any], tuple[bool, Any]]
    compile: Callable[[Any, Any], tuple[Any, Any]] = _identity_compile
    partition: Callable[[Any], Hashable] | None = None
    read_only: Callable[[Any, Any], bool] | None = None
    describe_operation: Callable[[Any, Any], str] = _default_describe_operation
    describe_state: Callable[[Any], str] = _default_describe_state
    read_value: Callable[[Any, Any], Any] | None = None
    resets: Callable[[Any], bool] | None = None
    reaches: Callable[[Any, Any], bool] | None = None


@dataclass(frozen=True)
class NondeterministicModel:
    """A sequential specification with a set of possible next states per step.

    ``init() -> iterable of states``; ``step(state, input, output) -> iterable of next states``
    (empty when the operation is illegal in ``state``). Other fields as in :class:`Model`.
    """

    name: str
    init: Callable[[], Iterable[Hashable]]
    step: Callable[[Any, Any, Any], Iterable[Hashable]]
    compile: Callable[[Any, Any], tuple[Any, Any]] = _identity_compile
    partition: Callable[[Any], Hashable] | None = None
    read_only: Callable[[Any, Any], bool] | None = None
    describe_operation: Callable[[Any, Any], str] = _default_describe_operation
    describe_state: Callable[[Any], str] = _default_describe_state

    def to_model(self) -> Model:
        """The equivalent deterministic :class:`Model` whose states are frozensets of states."""
        nd_step = self.step
        describe_one = self.describe_state

        def init() -> frozenset:
            return frozenset(self.init())

        def step(states: frozenset, inp: Any, out: Any) -> tuple[bool, frozenset]:
            nxt: set = set()
            for s in states:
                nxt.update(nd_step(s, inp, out))
            return bool(nxt), frozenset(nxt)

        def describe_state(states: frozenset) -> str:
            parts = sorted(describe_one(s) for s in states)
            return parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"

        # A read with a known output narrows a set of states, so only reads with an unknown
        # output leave the set unchanged; the others are searched like any operation.
        nd_read_only = self.read_only
        read_only = None
        if nd_read_only is not None:
            def read_only(inp: Any, out: Any) -> bool:
                return out is UNKNOWN_OUTPUT and nd_read_only(inp, out)

        return Model(
            name=self.name,
            init=init,
            step=step,
            compile=self.compile,
            partition=self.partition,
            read_only=read_only,
            describe_operation=self.describe_operation,
            describe_state=describe_state,
        )


# --------------------------------------------------------------------------------------------
# Value freezing


class _Tag:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_BOOL, _LIST, _DICT = _Tag("bool"), _Tag("list"), _Tag("dict")


def freeze(value: Any) -> Hashable:
    """A hashable stand-in for a JSON-like value, equal exactly when the values are equal.

    Lists/tuples and dicts become tagged tuples, booleans are kept apart from 0 and 1, and other
    hashable values are returned unchanged. Raises ``ValueError`` for an unhashable value of
    another type.
    """
    t = type(value)
    if value is None or t is str or t is int or t is float:
        return value
    if t is bool:
        return (_BOOL, value)
    if t is list or t is tuple:
        return (_LIST,) + tuple(freeze(v) for v in value)
    if t is dict:
        return (_DICT, frozenset((k, freeze(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        raise ValueError(f"value {value!r} cannot be compared (unhashable {t.__name__})") from None
    return value


def _op_of(inp: Any, known: tuple[str, ...], model: str) -> str:
    if not isinstance(inp, dict) or "op" not in inp:
        raise ValueError(f"input {_short_repr(inp)} is not a {model} operation (expected an object with \"op\")")
    op = inp["op"]
    if op not in known:
        hint = " (use --model cas-register)" if model == "register" and op == "cas" else ""
        raise ValueError(
            f"{model} model has no operation {op!r} (expected {', '.join(known)}){hint}"
        )
    return op


# --------------------------------------------------------------------------------------------
# register / cas-register

_READ, _WRITE, _CAS = 0, 1, 2


def _make_register_compile(known: tuple[str, ...], name: str):
    def compile_register(inp: Any, out: Any) -> tuple[Any, Any]:
        op = _op_of(inp, known, name)
        if op == "read":
            return (_READ, None, None), (out if out is UNKNOWN_OUTPUT else freeze(out))
        if op == "write":
            if "value" not in inp:
                raise ValueError(f"write {_short_repr(inp)} has no \"value\"")
            return (_WRITE, freeze(inp["value"]), None), None
        if "from" not in inp or "to" not in inp:
            raise ValueError(f"cas {_short_repr(inp)} needs \"from\" and \"to\"")
        if out is not UNKNOWN_OUTPUT and not isinstance(out, bool):
            raise ValueError(f"a cas returns true or false, not {_short_repr(out)}")
        return (_CAS, freeze(inp["from"]), freeze(inp["to"])), out

    return compile_register


def _register_step(state: Any, inp: tuple, out: Any) -> tuple[bool, Any]:
    kind = inp[0]
    if kind == _READ:
        return (out is UNKNOWN_OUTPUT or out == state), state
    if kind == _WRITE:
        return True, inp[1]
    if state == inp[1]:
        return out is not False, inp[2]
    return out is not True, state


def _nil(value: Any) -> str:
    return "nil" if value is None else _short_repr(value)


def _describe_register_op(inp: Any, out: Any) -> str:
    if not isinstance(inp, dict):
        return _default_describe_operation(inp, out)
    op = inp.get("op")
    if op == "read":
        return f"read() -> {_nil(out) if out is not UNKNOWN_OUTPUT else '?'}"
    if op == "write":
        return f"write({_nil(inp.get('value'))})"
    if op == "cas":
        res = "?" if out is UNKNOWN_OUTPUT or out is None else ("ok" if out else "fail")
        return f"cas({_nil(inp.get('from'))}, {_nil(inp.get('to'))}) -> {res}"
    return _default_describe_operation(inp, out)


def _describe_register_state(state: Any) -> str:
    return _nil(_thaw(state))


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and value and isinstance(value[0], _Tag):
        tag = value[0]
        if tag is _BOOL:
            return value[1]
        if tag is _LIST:
            return [_thaw(v) for v in value[1:]]
        return {k: _thaw(v) for k, v in value[1]}
    return value


def _read_value(inp: tuple, out: Any) -> Any:
    """The register's and kv's ``read_value``: a read (``_READ``, which is also kv's ``_GET``) with
    a known output is legal only where the state equals it."""
    return out if inp[0] == _READ and out is not UNKNOWN_OUTPUT else NOT_A_READ


def _register_read_only(inp: Any, out: Any) -> bool:
    if not isinstance(inp, dict):
        return False
    op = inp.get("op")
    return op == "read" or (op == "cas" and out is False)  # a failed cas changes nothing


def register_model() -> Model:
    """A read/write register that starts at None."""
    return Model(
        name="register",
        init=lambda: None,
        step=_register_step,
        compile=_make_register_compile(("read", "write"), "register"),
        read_only=_register_read_only,
        describe_operation=_describe_register_op,
        describe_state=_describe_register_state,
        read_value=_read_value,
    )


def cas_register_model() -> Model:
    """A read/write/compare-and-set register that starts at None (Jepsen's register)."""
    return replace(
        register_model(),
        name="cas-register",
        compile=_make_register_compile(("read", "write", "cas"), "cas-register"),
    )


# --------------------------------------------------------------------------------------------
# kv (partitioned by key; the state of a partition is its key's value)

_GET, _PUT, _APPEND = 0, 1, 2
_KV_KINDS = {"get": _GET, "put": _PUT, "append": _APPEND}


_GET_INPUT = (_GET, None)


def _kv_compile(inp: Any, out: Any) -> tuple[Any, Any]:
    """kv's ``compile``: the fast path for the common shapes (a dict with a string key, a string
    value or result), then :func:`_kv_compile_checked`, which gives the same result for them and
    names what is wrong with any other."""
    if type(inp) is dict and type(inp.get("key")) is str:
        op = inp.get("op")
        if op == "get":
            if out is None:
                out = ""
            if out is UNKNOWN_OUTPUT or type(out) is str:
                return _GET_INPUT, out
        elif op == "put" or op == "append":
            value = inp.get("value")
            if type(value) is str:
                return (_PUT if op == "put" else _APPEND, value), None
    return _kv_compile_checked(inp, out)


def _kv_compile_checked(inp: Any, out: Any) -> tuple[Any, Any]:
    """kv's ``compile`` for any input: validates it, raising ``ValueError`` naming the bad value."""
    op = _op_of(inp, ("get", "put", "append"), "kv")
    if "key" not in inp:
        raise ValueError(f"{op} {_short_repr(inp)} has no \"key\"")
    key = inp["key"]
    if not isinstance(key, (str, int, float)) and key is not None:  # bool is an int
        raise ValueError(f"key {_short_repr(key)} cannot be a partition key (a kv key is a string, "
                         "a number, true, false or null)")
    if isinstance(key, float) and key != key:
        raise ValueError(f"key {_short_repr(key)} cannot be a partition key (NaN equals nothing)")
    if op == "get":
        if out is None:
            out = ""
        if out is not UNKNOWN_OUTPUT and not isinstance(out, str):
            raise ValueError(f"a get returns a string, not {_short_repr(out)}")
        return (_GET, None), out
    value = inp.get("value")
    if not isinstance(value, str):
        raise ValueError(f"{op} needs a string \"value\", not {_short_repr(value)}")
    return (_KV_KINDS[op], value), None


def _kv_resets(inp: tuple) -> bool:
    """kv's ``resets`` (a compiled input): a put sets the value whatever it was."""
    return inp[0] == _PUT


def _kv_reaches(state: str, value: Any) -> bool:
    """kv's ``reaches``: gets and appends only ever extend ``state``, so a value that follows it
    without a put starts with it (anything but a string: no claim)."""
    return type(value) is not str or value.startswith(state)


def _kv_step(state: str, inp: tuple, out: Any) -> tuple[bool, str]:
    kind = inp[0]
    if kind == _GET:
        return (out is UNKNOWN_OUTPUT or out == state), state
    if kind == _PUT:
        return True, inp[1]
    return True, state + inp[1]


class KvKey:
    """A kv partition key that keeps its JSON type: Python takes ``1``, ``1.0`` and ``True`` for one
    dictionary key, a JSON store does not. Strings and integers are their own keys (they never
    compare equal to each other); a boolean, a float or null is wrapped in a KvKey, which equals
    only a KvKey of the same type and value and prints as the value. Picklable (worker processes
    receive partitions)."""

    __slots__ = ("value",)

    def __init__(self, value: Hashable) -> None:
        self.value = value

    def _tag(self) -> tuple[str, Hashable]:
        return type(self.value).__name__, self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KvKey) and self._tag() == other._tag()

    def __hash__(self) -> int:
        return hash(("KvKey",) + self._tag())

    def __repr__(self) -> str:
        return repr(self.value)

    def __reduce__(self):
        return (KvKey, (self.value,))


def kv_key(key: Any) -> Hashable:
    """The partition key of a kv ``key`` (see :class:`KvKey`): ``"1"``, ``1``, ``1.0``, ``true`` and
    null are five different keys."""
    t = type(key)
    if t is str or t is int:
        return key
    return KvKey(key)


def _kv_partition(inp: Any) -> Hashable:
    return kv_key(inp["key"])


def _kv_read_only(inp: Any, out: Any) -> bool:
    return isinstance(inp, dict) and inp.get("op") == "get"


def _describe_kv_op(inp: Any, out: Any) -> str:
    if not isinstance(inp, dict):
        return _default_describe_operation(inp, out)
    op, key = inp.get("op"), _short_repr(inp.get("key"))
    if op == "get":
        return f"get({key}) -> {_short_repr('' if out is None else out)}"
    if op in ("put", "append"):
        return f"{op}({key}, {_short_repr(inp.get('value'))})"
    return _default_describe_operation(inp, out)


def kv_model() -> Model:
    """A string key-value store with get/put/append, partitioned by key (Porcupine's kv model)."""
    return Model(
        name="kv",
        init=lambda: "",
        step=_kv_step,
        compile=_kv_compile,
        partition=_kv_partition,
        read_only=_kv_read_only,
        describe_operation=_describe_kv_op,
        describe_state=_short_repr,
        read_value=_read_value,
        resets=_kv_resets,
        reaches=_kv_reaches,
    )


# --------------------------------------------------------------------------------------------
# serving (DESIGN.md's reconfiguration spec)
#
# State: (epoch, exact). exact=False means "some epoch >= epoch, not observed yet" (after a
# pending reconfigure); this keeps the model deterministic and exact without guessing epochs.

_INFER, _RECONF = 0, 1


def _epoch_value(value: Any, what: str) -> int:
    if not validate.is_integer(value):
        raise ValueError(f"{what} must be an integer epoch, not {_short_repr(value)}")
    return value


def _serving_compile(inp: Any, out: Any) -> tuple[Any, Any]:
    op = _op_of(inp, ("infer", "reconfigure"), "serving")
    if op == "infer":
        if out is UNKNOWN_OUTPUT:
            return (_INFER,), out
        if not isinstance(out, dict) or ("epoch" not in out and "epochs" not in out):
            raise ValueError(f"an infer returns {{\"epoch\": e, ...}}, not {_short_repr(out)}")
        epochs: set[int] = set()
        if "epoch" in out:
            epochs.add(_epoch_value(out["epoch"], "\"epoch\""))
        if "epochs" in out:
            listed = out["epochs"]
            if not isinstance(listed, list) or not listed:
                raise ValueError(f"\"epochs\" must be a non-empty list, not {_short_repr(listed)}")
            epochs.update(_epoch_value(e, "each of \"epochs\"") for e in listed)
        return (_INFER,), frozenset(epochs)
    if out is UNKNOWN_OUTPUT:
        return (_RECONF,), out
    if not isinstance(out, dict) or "epoch" not in out:
        raise ValueError(f"a reconfigure returns {{\"epoch\": e}}, not {_short_repr(out)}")
    return (_RECONF,), _epoch_value(out["epoch"], "\"epoch\"")


def _serving_step(state: tuple[int, bool], inp: tuple, out: Any) -> tuple[bool, tuple[int, bool]]:
    epoch, exact = state
    if inp[0] == _INFER:
        if out is UNKNOWN_OUTPUT:
            return True, state
        if len(out) != 1:
            return False, state  # one batch, several epochs: never legal
        (e,) = out
        if exact:
            return e == epoch, state
        return e >= epoch, ((e, True) if e >= epoch else state)
    if out is UNKNOWN_OUTPUT:
        return True, (epoch + 1, False)
    if exact:
        return out > epoch, ((out, True) if out > epoch else state)
    # some epoch x >= epoch is current; out > x for some such x iff out > epoch
    return out > epoch, ((out, True) if out > epoch else state)


def _serving_read_only(inp: Any, out: Any) -> bool:
    # An infer that reports an epoch pins down an unknown epoch (after a pending reconfigure), so
    # only an infer with an unknown output never changes the state.
    return out is UNKNOWN_OUTPUT and isinstance(inp, dict) and inp.get("op") == "infer"


def _describe_serving_op(inp: Any, out: Any) -> str:
    if not isinstance(inp, dict):
        return _default_describe_operation(inp, out)
    op = inp.get("op")
    if op == "infer":
        head = f"infer(batch {_short_repr(inp.get('batch'))}, size {_short_repr(inp.get('size'))})"
        if out is UNKNOWN_OUTPUT or out is None:
            return f"{head} -> ?"
        if isinstance(out, dict):
            epochs = []
            if "epoch" in out:
                epochs.append(out["epoch"])
            if isinstance(out.get("epochs"), list):
                epochs.extend(out["epochs"])
            distinct = list(dict.fromkeys(epochs))
            if len(distinct) == 1:
                return f"{head} -> epoch {distinct[0]!r}"
            return f"{head} -> epochs {', '.join(repr(e) for e in distinct)}"
        return f"{head} -> {_short_repr(out)}"
    if op == "reconfigure":
        if isinstance(out, dict) and "epoch" in out:
            return f"reconfigure() -> epoch {out['epoch']!r}"
        return "reconfigure() -> ?"
    return _default_describe_operation(inp, out)


def _describe_serving_state(state: tuple[int, bool]) -> str:
    epoch, exact = state
    return f"epoch {epoch}" if exact else f"epoch >= {epoch} (after a pending reconfigure)"


def serving_model(initial_epoch: int = 0) -> Model:
    """DESIGN.md's reconfiguration spec, starting at ``initial_epoch``."""
    return Model(
        name="serving",
        init=lambda: (initial_epoch, True),
        step=_serving_step,
        compile=_serving_compile,
        read_only=_serving_read_only,
        describe_operation=_describe_serving_op,
        describe_state=_describe_serving_state,
    )


#: The built-in models by name.
MODELS: dict[str, Model] = {
    "register": register_model(),
    "cas-register": cas_register_model(),
    "kv": kv_model(),
    "serving": serving_model(),
}


def get_model(model: Model | NondeterministicModel | str) -> Model:
    """Resolve a model name (see :data:`MODELS`) or convert a nondeterministic model.

    Raises :class:`ModelError` naming an unknown model.
    """
    if isinstance(model, Model):
        return model
    if isinstance(model, NondeterministicModel):
        return model.to_model()
    if isinstance(model, str) and model in MODELS:
        return MODELS[model]
    raise ModelError(f"unknown model {model!r} (expected one of {', '.join(MODELS)})")
