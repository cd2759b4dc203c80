"""Small actors shared by the tests of actor systems and of the explorer: a pinging client and
two servers, and a one-request client and server whose replies a test chooses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from checker.actors import Actor, Invoke, Return, Send


@dataclass(frozen=True)
class Pinger(Actor):
    """A client that reads once: ping ``server``, return what the pong carries (a duplicated
    pong, once done, changes nothing)."""

    is_client = True

    def on_start(self):
        return "waiting", [Invoke({"op": "read"}), Send("server", ("ping",))]

    def on_msg(self, state, src, msg):
        if state == "done":
            return state, []  # a duplicated pong
        return "done", [Return(msg[1])]


@dataclass(frozen=True)
class Counter(Actor):
    """A server that answers each ping with how many pings it has seen."""

    def on_start(self):
        return 0, []

    def on_msg(self, state, src, msg):
        return state + 1, [Send(src, ("pong", state + 1))]


@dataclass(frozen=True)
class Echo(Actor):
    """A stateless server that answers each ping with ``("pong", None)``."""

    def on_start(self):
        return 0, []

    def on_msg(self, state, src, msg):
        return state, [Send(src, ("pong", None))]


@dataclass(frozen=True)
class Requester(Actor):
    """A client that sends ``request`` to ``"srv"`` at start (state 0) and, on the reply, moves to
    state 1 with the commands ``on_reply(reply)`` returns."""

    is_client = True
    request: tuple = ("req",)
    on_reply: Callable[[tuple], list] = lambda reply: []

    def on_start(self):
        return 0, [Send("srv", self.request)]

    def on_msg(self, state, src, msg):
        return 1, self.on_reply(msg)


@dataclass(frozen=True)
class Replier(Actor):
    """A stateless server that answers a request from ``client`` with the commands
    ``on_request(client)`` returns."""

    on_request: Callable[[str], list] = lambda client: []

    def on_start(self):
        return 0, []

    def on_msg(self, state, src, msg):
        return state, self.on_request(src)
