"""Random histories for the checker's tests: operations from a few clients on a short time line
(many overlaps and equal times), a client's last operation sometimes pending."""

from __future__ import annotations

import random
from collections.abc import Callable

from checker.history import History, Operation


def random_history(rng: random.Random, draw_op: Callable[[], tuple[object, object]], *, clients: int,
                   first_call: int, max_ops: int, go_on: float, pending_one_in: int, longest: int) -> History:
    """Up to ``max_ops`` operations (``draw_op()``: an (input, output)) from 1..``clients``
    clients, drawn from ``rng`` in a fixed order (so a seed gives one history): each client
    starts at 0..``first_call`` and goes on with probability ``go_on``; an operation is called
    0-2 after the client's last returned, is pending one time in ``pending_one_in`` (and is then
    the client's last), else lasts 0..``longest``."""
    ops: list[Operation] = []
    for client in range(rng.randint(1, clients)):
        t = rng.randint(0, first_call)
        while len(ops) < max_ops and rng.random() < go_on:
            inp, out = draw_op()
            call = t + rng.randint(0, 2)
            if rng.randint(0, pending_one_in - 1) == 0:
                ops.append(Operation(client, inp, out, call, None))
                break
            ret = call + rng.randint(0, longest)
            ops.append(Operation(client, inp, out, call, ret))
            t = ret + 1
    return History(ops)
