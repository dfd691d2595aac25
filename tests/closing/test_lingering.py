"""Every close wsrelay starts reaches a peer that is still sending (issue 13), on every side.

The real service as a process, raw sockets as clients (and as an upstream): a violation or a
server-side close while 200-600 kB or more are in flight toward the server. Before the
lingering close, these lost close frames to TCP resets (slow consumers every time); now every
try must read its close code and then see the server end TCP cleanly. A few hundred tries
here; `make test-closing` runs 1,000 per case.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from tests.closing import cases
from tests.closing.rawclose import OP_CLOSE, Try, endless_message
from tests.support import Service, client_frame

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: Tries per case in the default suite (about 300 in all).
TRIES = {
    "too_big": 40,
    "bad_utf8": 40,
    "bad_opcode": 30,
    "unmasked": 30,
    "idle": 30,
    "slow_consumer": 30,
    "drain_1001": 20,
    "drain_1012": 20,
    "proxy_1014": 30,
    "upstream_too_big": 30,
}


@pytest.mark.parametrize("case", list(TRIES))
def test_no_close_frame_is_lost_while_the_peer_keeps_sending(case: str) -> None:
    result = cases.run(case, TRIES[case])
    assert result.tries == TRIES[case], result.line()
    assert result.lost == 0, result.line()
    # The close frame was answered and the server then ended TCP: a FIN, never a reset.
    assert result.reset == 0, result.line()


def test_a_peer_that_never_stops_sending_is_cut_at_the_close_timeout_and_counted() -> None:
    routes = [{"path": "/idle", "mode": "echo", "idle_timeout": 0.2}]
    env = {"ROUTES": routes, "MAX_MESSAGE_BYTES": 64 << 20, "PING_INTERVAL": 0}
    with Service(env) as service:
        assert service.metrics().value("wsrelay_close_timeouts_total", side="server") == 0
        attempt = Try(service.port, "/idle", endless_message(1 << 30), pace=0.01)
        client = attempt.client
        opcode, payload = client.read_frame()
        assert (opcode, struct.unpack("!H", payload[:2])[0]) == (OP_CLOSE, 1008)
        closed_at = time.monotonic()
        # Never answered: the sender goes on writing its message until the server cuts it.
        ending = _read_to_end(client.sock)
        waited = time.monotonic() - closed_at
        attempt.finish(timeout=5, before=lambda: None)
        assert ending in ("eof", "reset")  # aborted: a reset if bytes were still unread
        assert waited >= 4.5  # the close timeout is 5 s (Options.close_timeout)
        metrics = service.metrics()
        assert metrics.value("wsrelay_close_timeouts_total", side="server") == 1
        cuts = [event for event in service.log_events() if event.get("event") == "close_cut"]
        assert len(cuts) == 1, cuts
        assert cuts[0]["side"] == "server"


def _read_to_end(sock: socket.socket) -> str:
    """Read until the server ends the connection: "eof", "reset" or "timeout"."""
    sock.settimeout(30)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "timeout"
    return "eof"


def test_a_close_the_client_starts_is_answered_and_ended_by_the_server() -> None:
    """The peer's side of the handshake: our answer, then the server ends TCP (a FIN)."""
    with Service({"ROUTES": cases.echo_routes(), "PING_INTERVAL": 0}) as service:
        attempt = Try(service.port, "/echo", iter([client_frame(OP_CLOSE, b"\x0f\xa0bye")]))
        outcome = attempt.finish(timeout=10, answer=False)
        assert (outcome.code, outcome.ended) == (4000, "eof")
