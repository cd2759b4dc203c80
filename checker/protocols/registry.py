"""The protocol registry and the pieces every protocol is built from: :class:`Protocol` (one
explorable configuration), :class:`ProtocolSpec` (a registry entry), :data:`PROTOCOLS` (name ->
spec, filled by :mod:`checker.protocols` with its children's specs), :func:`build` (a protocol
from a registered name, a variant and parameters), the builders' helpers :func:`make_protocol`,
:func:`make_system`, :func:`require_at_least` and :data:`FAULT_DEFAULTS`, and the parameter limits.
The protocol modules (:mod:`~checker.protocols.reconfig`, :mod:`~checker.protocols.register`)
import from here; import the public names from :mod:`checker.protocols`."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checker.actors import ActorError, Faults, Invariant, System, SystemState
from checker.explore.properties import Property
from checker.history import History
from packrat_sim import validate
from packrat_sim.errors import PackratError

__all__ = [
    "FAULT_DEFAULTS", "MAX_ACTORS", "MAX_INT_PARAM", "PROTOCOLS", "Protocol", "ProtocolError", "ProtocolSpec", "build",
    "make_protocol", "make_system", "names", "register_protocol", "require_at_least",
]


class ProtocolError(PackratError):
    """An unknown protocol, variant or parameter, or a bad parameter value; the message names it."""


@dataclass(frozen=True)
class Protocol:
    """One explorable configuration of a protocol.

    ``params``: the parameters it was built with, as sorted ``(name, value)`` pairs (JSON values).
    ``model``: the checker model its histories are judged by. ``invariants``: checked by the
    explorer on every state (or, for ``quiescent`` ones, where nothing is left to deliver).
    ``op_key``: the key of an operation input for key-aware reduction (operations on different
    keys are judged independently); None when the model is not partitioned.
    ``buggy``: whether the variant is a known-buggy one (a fact about the variant, for reports).
    ``properties``: :class:`~checker.explore.properties.Property` values with expectations
    (``always``, ``sometimes``, ``eventually``) that the explorer judges and reports.
    """

    name: str
    variant: str
    params: tuple[tuple[str, Any], ...]
    system: System
    model: str
    invariants: tuple[Invariant, ...] = ()
    op_key: Callable[[Any], Hashable] | None = None
    buggy: bool = False
    description: str = ""
    properties: tuple[Property, ...] = ()

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.params)

    def history(self, state: SystemState) -> History:
        """The history recorded in ``state``, naming this protocol's model."""
        return self.system.history(state, self.model)

    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}/{self.variant}" + (f" ({extra})" if extra else "")


@dataclass(frozen=True)
class ProtocolSpec:
    """A registry entry: how to build a protocol's variants from parameters.

    ``variants``: name -> (one-line description, buggy?). ``defaults``: parameter -> default
    value (its type is the parameter's type); ``variant_defaults``: per-variant overrides.
    ``build(variant, params) -> Protocol`` receives every parameter, validated.
    """

    name: str
    description: str
    variants: Mapping[str, tuple[str, bool]]
    default_variant: str
    defaults: Mapping[str, Any]
    build: Callable[[str, dict], Protocol]
    variant_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def correct_variants(self) -> tuple[str, ...]:
        return tuple(v for v, (_, buggy) in self.variants.items() if not buggy)

    @property
    def buggy_variants(self) -> tuple[str, ...]:
        return tuple(v for v, (_, buggy) in self.variants.items() if buggy)

    def params_for(self, variant: str) -> dict[str, Any]:
        """The default parameters of ``variant``."""
        out = dict(self.defaults)
        out.update(self.variant_defaults.get(variant, {}))
        return out


PROTOCOLS: dict[str, ProtocolSpec] = {}

# Limits on parameters (schedule spaces grow exponentially long before these; they keep a typo
# such as clients=1000000000 from allocating gigabytes before any budget can be checked).
MAX_INT_PARAM = 1000  # every integer parameter
MAX_ACTORS = 64  # actors in one system

# Fault budgets per schedule that every protocol accepts as parameters (see checker.actors.Faults).
FAULT_DEFAULTS = {"drops": 0, "duplicates": 0, "crashes": 0, "restarts": 0}


def make_system(protocol: str, actors, params: Mapping[str, Any], symmetry=()) -> System:
    """The actor system of ``actors`` on ``params["network"]`` with the fault budgets of
    ``params`` (:data:`FAULT_DEFAULTS`) and the groups of interchangeable actors ``symmetry``
    (see :meth:`~checker.actors.System.canonical`); a bad value is a ProtocolError naming
    ``protocol``."""
    try:
        faults = Faults(**{name: params[name] for name in FAULT_DEFAULTS})
        return System(actors, network=params["network"], faults=faults, symmetry=symmetry)
    except ActorError as exc:
        raise ProtocolError(f"{protocol}: {exc}") from None


def require_at_least(protocol: str, values: Iterable[tuple[str, int, int]]) -> None:
    """Each ``(name, value, low)``: a ProtocolError naming ``protocol`` when ``value < low``."""
    for name, value, low in values:
        if value < low:
            raise ProtocolError(f"{protocol} parameter {name} must be at least {low}, not {value}")


def make_protocol(
    name: str,
    variant: str,
    params: Mapping[str, Any],
    actors,
    *,
    model: str,
    variants: Mapping[str, tuple[str, bool]],
    invariants: tuple[Invariant, ...] = (),
    op_key: Callable[[Any], Hashable] | None = None,
    symmetry=(),
    properties: tuple[Property, ...] = (),
) -> Protocol:
    """The :class:`Protocol` ``name``/``variant`` of ``actors`` (on the network and fault budgets
    of ``params``, :func:`make_system`); its description and buggy flag come from ``variants``
    (the spec's table: variant -> (description, buggy?)). ``symmetry``: groups of actor names
    the protocol promises are interchangeable (same configuration, treated alike by every other
    actor, named only as plain strings inside states and messages). ``properties``: the
    protocol's properties with expectations (:mod:`checker.explore.properties`)."""
    if len(actors) > MAX_ACTORS:
        raise ProtocolError(f"{name}: these parameters make {len(actors):,} actors; the limit is {MAX_ACTORS}")
    description, buggy = variants[variant]
    return Protocol(
        name=name,
        variant=variant,
        params=tuple(sorted(params.items())),
        system=make_system(name, actors, params, symmetry),
        model=model,
        invariants=invariants,
        op_key=op_key,
        buggy=buggy,
        description=description,
        properties=tuple(properties),
    )


def register_protocol(spec: ProtocolSpec) -> ProtocolSpec:
    PROTOCOLS[spec.name] = spec
    return spec


def names() -> tuple[str, ...]:
    """The registered protocol names."""
    return tuple(PROTOCOLS)


def _coerce(name: str, value: Any, default: Any, protocol: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        from packrat_sim.spec import bool_word

        flag = bool_word(value) if isinstance(value, str) else None
        if flag is not None:
            return flag
        raise ProtocolError(f"{protocol} parameter {name} must be true or false, not {value!r}")
    if isinstance(default, int):
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ProtocolError(f"{protocol} parameter {name} must be an integer, not {value!r}") from None
        if not validate.is_integer(value):
            raise ProtocolError(f"{protocol} parameter {name} must be an integer, not {value!r}")
        if value > MAX_INT_PARAM:
            raise ProtocolError(f"{protocol} parameter {name} must be at most {MAX_INT_PARAM}, not {value}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ProtocolError(f"{protocol} parameter {name} must be a string, not {value!r}")
        return value
    return value


def build(name: str | None, variant: str | None = None, **params: Any) -> Protocol:
    """The protocol ``name`` in ``variant`` (default: the protocol's default variant) with
    ``params`` overriding the variant's defaults. Integer parameters also accept decimal strings
    (as typed on a command line). A missing or unknown ``name`` raises ProtocolError naming it."""
    if not isinstance(name, str) or name not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r} (expected one of {', '.join(PROTOCOLS)})")
    spec = PROTOCOLS[name]
    variant = spec.default_variant if variant is None else variant
    if not isinstance(variant, str) or variant not in spec.variants:
        raise ProtocolError(
            f"unknown variant {variant!r} of protocol {name} (expected one of {', '.join(spec.variants)})"
        )
    values = spec.params_for(variant)
    for key, value in params.items():
        if key not in values:
            raise ProtocolError(
                f"unknown parameter {key!r} of protocol {name} (expected one of {', '.join(sorted(values))})"
            )
        values[key] = _coerce(key, value, values[key], name)
    return spec.build(variant, values)
