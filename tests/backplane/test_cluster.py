"""Rooms over a real local Redis Cluster (3 masters, 3 replicas) and its faults.

One cluster for the module (made with `redis-cli --cluster create`); each test leaves it whole
again (a killed node is restarted and rejoins as a replica). Where a room's channel lives is
asked of the nodes themselves (CLUSTER KEYSLOT, PUBSUB SHARDCHANNELS / SHARDNUMSUB), never of
wsrelay's code.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.backplane.clusterproc import Cluster, ClusterNode, lowest_slot, redis_cli_binary
from tests.backplane.conftest import require_redis_server
from tests.backplane.replicas import (
    backplane_env,
    readyz,
    three_replicas,
    wait_ready,
    wait_until,
)
from tests.support import Service, http_get

pytestmark = pytest.mark.e2e

ROUTE = "/rooms/{room}"
RECV_TIMEOUT = 10.0


def channel(room: str, route: str = ROUTE) -> str:
    """The sharded channel of a room: the whole room key, braces escaped, is the hash tag."""
    key = f"{route}#{room}".replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return f"wsrelay:{{{key}}}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_redis_server()
    if redis_cli_binary() is None:
        pytest.skip("redis-cli not found: install the Debian package redis-tools")
    with Cluster() as made:
        yield made


@pytest.fixture(scope="module")
def replicas(cluster: Cluster) -> Iterator[tuple[Service, Service, Service]]:
    with three_replicas(backplane_env(cluster.url)) as trio:
        yield trio


@pytest.fixture
async def clients() -> AsyncIterator[Any]:
    """Opens clients on demand and closes them all after the test."""
    async with AsyncExitStack() as stack:

        async def connect(service: Service, room: str) -> ClientConnection:
            ws = await websockets.connect(service.ws_url(f"/rooms/{room}"))
            stack.push_async_callback(ws.close)
            return ws

        yield connect


async def recv(ws: ClientConnection) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)


def slot_of(cluster: Cluster, room: str) -> int:
    return int(cluster.alive()[0].call("CLUSTER", "KEYSLOT", channel(room)))


def subscribers(cluster: Cluster, room: str) -> int:
    """Subscribers of the room's channel on the master that serves its slot."""
    node = cluster.node_for_slot(slot_of(cluster, room))
    reply = node.call("PUBSUB", "SHARDNUMSUB", channel(room))
    return int(reply[1])


def wait_subscribed(cluster: Cluster, room: str, count: int) -> None:
    wait_until(lambda: subscribers(cluster, room) == count, f"{count} subscribers of {room}")


def rooms_on(cluster: Cluster, ranges: list[tuple[int, int]], count: int, prefix: str) -> list[str]:
    """`count` room names whose channels hash into `ranges` (asked of the cluster)."""
    found = []
    for i in itertools.count():
        room = f"{prefix}{i}"
        if any(low <= slot_of(cluster, room) <= high for low, high in ranges):
            found.append(room)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


def metric(service: Service, name: str, **labels: str) -> float:
    return service.metrics().value(name, **labels)


def dropped(service: Service) -> float:
    return metric(service, "wsrelay_dropped_messages_total", route=ROUTE, reason="backplane")


async def test_rooms_spread_over_the_masters_and_cross_replicas_exactly_once(
    cluster: Cluster, replicas: tuple[Service, Service, Service], clients: Any
) -> None:
    a, b, _ = replicas
    rooms = [f"spread-{i}" for i in range(24)]
    on_a = {room: await clients(a, room) for room in rooms}
    on_b = {room: await clients(b, room) for room in rooms}
    for room in rooms:
        wait_subscribed(cluster, room, 2)

    # Each channel is subscribed on the master of its slot, and the rooms use every master.
    homes = {room: cluster.node_for_slot(slot_of(cluster, room)).address for room in rooms}
    masters = cluster.masters()
    assert set(homes.values()) == set(masters)
    for address in masters:
        listed = cluster.shard_channels(cluster.node(address))
        assert {channel(room) for room in rooms if homes[room] == address} <= listed
        assert not {channel(room) for room in rooms if homes[room] != address} & listed

    for room in rooms:
        await on_a[room].send(f"to {room}")
    for room in rooms:
        assert await recv(on_b[room]) == f"to {room}"
    await on_b[rooms[0]].send("back")
    assert await recv(on_a[rooms[0]]) == "back"
    for room in rooms:  # exactly once: nothing more arrived in any room
        await on_a[room].send("end")
        assert await recv(on_b[room]) == "end"


async def test_order_per_publisher_and_room_holds_across_replicas(
    cluster: Cluster, replicas: tuple[Service, Service, Service], clients: Any
) -> None:
    a, b, c = replicas
    rooms = [f"order-{i}" for i in range(4)]
    senders = {room: [await clients(a, room), await clients(b, room)] for room in rooms}
    receivers = {room: await clients(c, room) for room in rooms}
    for room in rooms:
        wait_subscribed(cluster, room, 3)
    count = 100
    for i in range(count):
        for room in rooms:
            for name, ws in zip("ab", senders[room], strict=True):
                await ws.send(f"{name} {i}")
    for room in rooms:
        got: dict[str, list[int]] = {"a": [], "b": []}
        for _ in range(2 * count):
            name, number = str(await recv(receivers[room])).split()
            got[name].append(int(number))
        assert got == {"a": list(range(count)), "b": list(range(count))}
        # Each sender hears the other one's messages, in order, once.
        first, second = senders[room]
        assert [await recv(first) for _ in range(count)] == [f"b {i}" for i in range(count)]
        assert [await recv(second) for _ in range(count)] == [f"a {i}" for i in range(count)]
    assert dropped(a) == dropped(b) == 0


async def test_a_slot_migrated_by_reshard_while_busy_keeps_delivering(
    cluster: Cluster, replicas: tuple[Service, Service, Service], clients: Any
) -> None:
    a, b, _ = replicas
    masters = cluster.masters()
    source, target = sorted(masters)[:2]
    low = lowest_slot(masters[source])
    moved = 64  # `reshard` moves the source's lowest slots first
    (room,) = rooms_on(cluster, [(low, low + moved - 1)], 1, "moving-")
    sender = await clients(a, room)
    receiver = await clients(b, room)
    wait_subscribed(cluster, room, 2)

    sent = 0
    stop = asyncio.Event()

    async def send_steadily() -> None:
        nonlocal sent
        while not stop.is_set() and sent < 20_000:
            await sender.send(str(sent))
            sent += 1
            await asyncio.sleep(0.002)

    sending = asyncio.create_task(send_steadily())
    await asyncio.sleep(0.3)
    await asyncio.to_thread(cluster.reshard, moved, source, target)
    assert cluster.node_for_slot(slot_of(cluster, room)).address == target
    # Both replicas follow the slot to its new master (the wait is in a thread: the sender
    # keeps sending meanwhile).
    await asyncio.to_thread(wait_subscribed, cluster, room, 2)
    followed = sent  # from here on the room is on the new master for both replicas
    await asyncio.sleep(0.5)
    stop.set()
    await sending
    wait_ready(a, b)
    await sender.send("end")

    got = []
    while (message := await recv(receiver)) != "end":
        got.append(int(message))
    assert got == sorted(set(got))  # in order, none twice
    assert set(range(followed, sent)) <= set(got)  # delivery continued after the move
    assert sent - followed > 10
    # (what was published while the slot moved may be lost: at most once)
    assert channel(room) in cluster.shard_channels(cluster.node(target))
    assert channel(room) not in cluster.shard_channels(cluster.node(source))


def cut_links(node: ClusterNode) -> int:
    """CLIENT KILL every connection wsrelay opened to `node` (they carry its client name): what
    a network cut or a proxy restart does to them. How many there were."""
    ids = [
        fields["id"]
        for line in node.call("CLIENT", "LIST").splitlines()
        if (fields := dict(field.partition("=")[::2] for field in line.split()))["name"]
        == "wsrelay"
    ]
    for client_id in ids:
        node.call("CLIENT", "KILL", "ID", client_id)
    return len(ids)


def shard_downs(service: Service, address: str) -> list[dict[str, Any]]:
    """The log events saying the link to the master at `address` failed."""
    return [
        event
        for event in service.log_events()
        if event.get("event") == "backplane_shard_down" and event.get("redis") == address
    ]


async def test_a_master_cutting_its_links_is_logged_as_that_shard_lost_and_they_come_back(
    cluster: Cluster, replicas: tuple[Service, Service, Service], clients: Any
) -> None:
    a, b, _ = replicas
    masters = cluster.masters()
    address = sorted(masters)[0]
    (room,) = rooms_on(cluster, masters[address], 1, "cut-")
    sender, receiver = await clients(a, room), await clients(b, room)
    wait_subscribed(cluster, room, 2)
    before = len(shard_downs(a, address))

    assert cut_links(cluster.node(address)) > 0
    wait_until(lambda: len(shard_downs(a, address)) > before, f"backplane_shard_down {address}")
    event = shard_downs(a, address)[before]
    assert (event["level"], event["message"]) == ("WARNING", "backplane shard lost")
    assert event["error"]
    assert event["retry_in"] >= 0
    # The link reconnects on its own (the master never went away) and subscribes the room again.
    wait_ready(a, b)
    wait_subscribed(cluster, room, 2)
    await sender.send("after the cut")
    assert await recv(receiver) == "after the cut"
    for ws in (sender, receiver):
        assert ws.close_code is None  # the same client connections all along


async def test_a_killed_master_is_replaced_and_its_rooms_work_again_on_the_same_connections(
    cluster: Cluster, replicas: tuple[Service, Service, Service], clients: Any
) -> None:
    a, b, _ = replicas
    masters = cluster.masters()
    victim_address, other_address = sorted(masters)[:2]
    (room,) = rooms_on(cluster, masters[victim_address], 1, "failover-")
    (elsewhere,) = rooms_on(cluster, masters[other_address], 1, "steady-")
    sender, receiver = await clients(a, room), await clients(b, room)
    steady_sender, steady_receiver = await clients(a, elsewhere), await clients(b, elsewhere)
    wait_subscribed(cluster, room, 2)
    wait_subscribed(cluster, elsewhere, 2)
    await sender.send("before")
    assert await recv(receiver) == "before"

    victim = cluster.node(victim_address)
    victim.kill()
    wait_ready(a, b, status=503)
    assert metric(a, "wsrelay_backplane_up") == metric(b, "wsrelay_backplane_up") == 0
    # The other masters' rooms do not wait for the dead one.
    await steady_sender.send("meanwhile")
    assert await recv(steady_receiver) == "meanwhile"

    await asyncio.to_thread(cluster.wait_promoted, victim)
    wait_ready(a, b)
    assert metric(a, "wsrelay_backplane_up") == metric(b, "wsrelay_backplane_up") == 1
    assert cluster.node_for_slot(slot_of(cluster, room)).address != victim_address
    wait_subscribed(cluster, room, 2)
    await sender.send("after")
    assert await recv(receiver) == "after"
    await receiver.send("and back")
    assert await recv(sender) == "and back"
    for ws in (sender, receiver, steady_sender, steady_receiver):
        assert ws.close_code is None  # the same client connections all along

    await asyncio.to_thread(cluster.restart, victim)  # rejoins as a replica
    assert victim_address not in cluster.masters()


async def test_the_whole_cluster_down_and_back_is_a_restart(
    cluster: Cluster, replicas: tuple[Service, Service, Service], clients: Any
) -> None:
    a, b, _ = replicas
    room = "restart"
    sender, local, remote = await clients(a, room), await clients(a, room), await clients(b, room)
    wait_subscribed(cluster, room, 2)
    before = dropped(a)

    for node in cluster.nodes:
        node.kill()
    wait_ready(a, b, status=503)
    assert metric(a, "wsrelay_backplane_up") == 0
    outage = [f"during {i}" for i in range(5)]
    for message in outage:
        await sender.send(message)
    for message in outage:  # the replica's own members keep their room
        assert await recv(local) == message
    wait_until(lambda: dropped(a) == before + len(outage), "the outage's messages counted")

    await asyncio.to_thread(_start_all, cluster.nodes)
    await asyncio.to_thread(cluster.wait_ok)
    wait_ready(a, b)
    wait_subscribed(cluster, room, 2)
    await sender.send("after")
    assert await recv(remote) == "after"  # not one outage message replayed
    assert await recv(local) == "after"
    await remote.send("back")
    assert await recv(sender) == "back"
    assert readyz(a) == 200
    for ws in (sender, local, remote):
        assert ws.close_code is None


def _start_all(nodes: list[ClusterNode]) -> None:
    for node in nodes:
        node.start()


async def test_replicas_started_before_the_cluster_serve_locally_then_become_ready() -> None:
    late = Cluster(replicas_per_master=0)  # its ports are chosen, nothing listens yet
    try:
        env = backplane_env(late.url)
        with Service(env) as a, Service(env) as b:
            status, _, body = http_get(a.url("/readyz"))
            assert status == 503
            assert b"backplane unreachable" in body
            assert metric(a, "wsrelay_backplane_up") == metric(b, "wsrelay_backplane_up") == 0
            async with (
                websockets.connect(a.ws_url("/rooms/early")) as first,
                websockets.connect(a.ws_url("/rooms/early")) as second,
            ):
                await first.send("local while down")
                assert await recv(second) == "local while down"
                assert dropped(a) == 1

                await asyncio.to_thread(late.start)
                wait_ready(a, b)
                assert metric(a, "wsrelay_backplane_up") == metric(b, "wsrelay_backplane_up") == 1
                async with websockets.connect(b.ws_url("/rooms/early")) as on_b:
                    wait_subscribed(late, "early", 2)  # A subscribed the room it already had
                    await on_b.send("across")
                    assert await recv(first) == "across"
                    assert await recv(second) == "across"
    finally:
        late.stop()
