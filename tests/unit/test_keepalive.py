"""Keepalive timing with a fake clock: no sleeping, no sockets."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.keepalive import Action, Keepalive, KeepaliveScheduler


def test_ping_then_pong_gives_the_round_trip_and_the_next_ping_follows_the_interval() -> None:
    keepalive = Keepalive(now=0.0, interval=20, timeout=10)
    assert keepalive.poll(19.9, 0) is None
    assert keepalive.poll(20.0, 0) is Action.PING
    payload = keepalive.ping_payload
    assert payload is not None
    assert len(payload) == 8
    assert keepalive.on_pong(b"someone else's", 20.1) is None  # unsolicited: no measurement
    assert keepalive.on_pong(payload, 20.25) == 0.25
    assert keepalive.latency == 0.25
    # The scheduler still holds the pong's deadline; waking then finds nothing to do.
    assert keepalive.poll(30.0, 0) is None
    assert keepalive.deadline == 40.0
    assert keepalive.poll(40.0, 0) is Action.PING
    assert keepalive.ping_payload != payload  # every ping has its own payload


def test_no_pong_within_the_timeout_is_a_ping_timeout() -> None:
    keepalive = Keepalive(now=0.0, interval=1, timeout=2)
    assert keepalive.poll(1.0, 0) is Action.PING
    assert keepalive.poll(2.0, 0) is None  # the next ping waits for the pong
    assert keepalive.poll(2.99, 0) is None
    assert keepalive.poll(3.0, 0) is Action.PING_TIMEOUT


def test_idle_counts_only_silence_in_received_messages() -> None:
    keepalive = Keepalive(now=0.0, interval=0, timeout=1, idle_timeout=5)
    assert keepalive.deadline == 5.0
    assert keepalive.poll(5.0, activity=3) is None  # messages came: the clock restarts
    assert keepalive.deadline == 10.0
    assert keepalive.poll(10.0, activity=3) is Action.IDLE_TIMEOUT


def test_interval_zero_and_no_idle_means_nothing_to_do_ever() -> None:
    keepalive = Keepalive(now=0.0, interval=0, timeout=1)
    assert keepalive.deadline == float("inf")


@dataclass(eq=False)
class FakeConnection:
    keepalive: Keepalive
    answer: bool = True
    activity: int = 0
    closed: bool = False
    actions: list[tuple[float, Action]] = field(default_factory=list)
    clock: list[float] = field(default_factory=lambda: [0.0])

    def keepalive_due(self, action: Action) -> None:
        self.actions.append((self.clock[0], action))
        if action is Action.PING and self.answer:
            assert self.keepalive.ping_payload is not None
            self.keepalive.on_pong(self.keepalive.ping_payload, self.clock[0] + 0.01)
        elif action is not Action.PING:
            self.closed = True


def run(scheduler: KeepaliveScheduler, clock: list[float], until: float, step: float) -> None:
    while clock[0] < until:
        clock[0] = round(clock[0] + step, 6)
        scheduler.tick(clock[0])


def test_one_scheduler_pings_many_connections_on_their_own_cadence() -> None:
    clock = [0.0]
    scheduler = KeepaliveScheduler(clock=lambda: clock[0])
    fast = FakeConnection(Keepalive(0.0, interval=1, timeout=5), clock=clock)
    slow = FakeConnection(Keepalive(0.0, interval=3, timeout=5), clock=clock)
    silent = FakeConnection(Keepalive(0.0, interval=1, timeout=2), answer=False, clock=clock)
    for conn in (fast, slow, silent):
        scheduler.add(conn)
    run(scheduler, clock, until=10, step=0.25)
    assert [t for t, _ in fast.actions] == [float(n) for n in range(1, 11)]
    assert [t for t, _ in slow.actions] == [3.0, 6.0, 9.0]
    assert silent.actions == [(1.0, Action.PING), (3.0, Action.PING_TIMEOUT)]
    assert len(scheduler) == 2  # the dropped connection left the heap


def test_a_closed_connection_leaves_the_scheduler_at_its_next_deadline() -> None:
    clock = [0.0]
    scheduler = KeepaliveScheduler(clock=lambda: clock[0])
    conn = FakeConnection(Keepalive(0.0, interval=1, timeout=1), clock=clock)
    scheduler.add(conn)
    conn.closed = True
    run(scheduler, clock, until=2, step=0.5)
    assert conn.actions == []
    assert len(scheduler) == 0


def test_a_discarded_connection_is_let_go_at_once() -> None:
    import gc
    import weakref

    clock = [0.0]
    scheduler = KeepaliveScheduler(clock=lambda: clock[0])
    conn = FakeConnection(Keepalive(0.0, interval=20, timeout=20), clock=clock)
    scheduler.add(conn)
    gone = weakref.ref(conn)
    scheduler.discard(conn)
    del conn
    gc.collect()
    assert gone() is None  # the heap holds an empty entry until its deadline, not the connection
    run(scheduler, clock, until=21, step=1.0)
    assert len(scheduler) == 0
