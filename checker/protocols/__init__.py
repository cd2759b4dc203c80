"""Protocols written as actor systems, ready for the explorer (:mod:`checker.explore`).

A :class:`Protocol` is one concrete, explorable system: the actors and network
(:class:`~checker.actors.System`), the sequential model its histories are judged by (a name from
:data:`checker.models.MODELS`), the protocol's invariants, and, for key-aware reduction, the key of
an operation. :func:`build` makes one from a registered name, a variant and parameters::

    build("reconfig", "ack-before-switch")            # DESIGN.md's reconfiguration protocol
    build("register", "erroneous", replicas=3)        # DS2's replicated registers

Registered protocols (:data:`PROTOCOLS`):

``reconfig``
    clients, dispatcher, controller, old and new instances; variants ``correct``,
    ``switch-before-ready``, ``stop-before-drain``, ``per-instance-switch``, ``ack-before-switch``,
    ``drop-batch`` (loses a batch: caught by its ``eventually`` property, not by linearizability)
    (see :mod:`checker.protocols.reconfig`).
``register``
    a replicated register on ``replicas`` replicas; variants ``majority`` (reads wait until a
    majority agrees), ``erroneous`` (DS2's: a read returns once one replica answers) and ``abd``
    (Attiya-Bar-Noy-Dolev) (see :mod:`checker.protocols.register`).

Every problem with a name, variant or parameter is a :class:`ProtocolError` naming it. Integer
parameters are at most :data:`MAX_INT_PARAM` (1000) and a system has at most :data:`MAX_ACTORS`
(64) actors: exploration is exponential long before, and the limits keep a typo from allocating
gigabytes before a time budget can be checked.

Layout: the registry and the builders' helpers live in :mod:`checker.protocols.registry`; the
protocol modules import them from there and define their :class:`ProtocolSpec` as ``SPEC``; this
package registers those specs (in the order :data:`PROTOCOLS` lists them) and re-exports the
public names.
"""

from __future__ import annotations

from checker.protocols import reconfig, register
from checker.protocols.registry import (
    FAULT_DEFAULTS,
    MAX_ACTORS,
    MAX_INT_PARAM,
    PROTOCOLS,
    Protocol,
    ProtocolError,
    ProtocolSpec,
    build,
    make_protocol,
    make_system,
    names,
    register_protocol,
    require_at_least,
)

__all__ = [
    "FAULT_DEFAULTS", "MAX_ACTORS", "MAX_INT_PARAM", "PROTOCOLS", "Protocol", "ProtocolError", "ProtocolSpec", "build", "make_protocol", "make_system",
    "names", "require_at_least",
]

for _spec in (reconfig.SPEC, register.SPEC):  # the registered protocols, in this order
    register_protocol(_spec)
