"""Proxy passthrough: a proxied message's frames go to the other side without being decoded.

When the proxy bridges a client to its upstream (`bridge`), each connection gets a `FrameTap`
between its frame scanner (closing.py's `Inbound`, which has seen every byte since the
handshake) and aiohttp's frame reader. The tap steps over frame headers and hands every byte
to the reader, as the decoded path does, until the first message boundary it can be sure of
where nothing decoded is still queued; from there it forwards data frames to the other
side's socket as they arrive:

- upstream -> client: the upstream's unmasked frames are written as they came, header checked;
- client -> upstream: the client's masked frames are re-masked with a key of wsrelay's own
  (os.urandom), never the client's (RFC 6455 10.3: a client-chosen mask would let a client
  write plaintext toward anything between wsrelay and the upstream), XORed in aiohttp's C
  mask routine: one pass with (client key ^ own key) for a binary frame (a whole short frame
  XORs fresh random bytes over its key and payload at once, which makes (client key ^ those
  bytes) its key: one the client cannot know).

What stays exactly as on the decoded path: control frames (pings, pongs, closes) go to
aiohttp's reader and the connection's own handling (keepalive per hop, close codes and the
1014 mapping, the lingering close); header errors fail the sending side with aiohttp's codes
and reasons (1002, 1009 over `max_message_bytes`, counted over a fragmented message's frames);
message and byte counts; a receiver over SEND_QUEUE_BYTES is a slow consumer (1008); a paused
receiver pauses the sender's socket until it drains. UTF-8 (1007): wsrelay checks every text
message in both directions itself, fragment by fragment (an incremental decoder, so it fails
as soon as a sequence is invalid), as it did when it decoded them; a text payload from the
client is therefore unmasked, checked and masked with wsrelay's key (two passes of the C
routine). A data frame is written only once it is whole, so a ping or a close written by
either side never lands inside it; fragmented messages stay fragmented.

`Shortcut` takes the reads made only of whole data frames from uvloop to the tap directly,
past aiohttp's protocol and the scanner (which would learn nothing from them). Compressed
connections and connections whose `Wire` is not the plain one (fault injection shapes frames
there) keep the decoded path: `bridge` says False.

The modules, each readable alone. The tap is one class built in layers, a module each, so
that the per-frame code runs the same operations as when it was one class (the proxy
benchmark's hot path): methods still reached through `self`, module constants as globals,
fields only in state.py's `__slots__` (the layers add none, so a tap has no `__dict__`).

    __init__.py     bridge: is this pair of connections relayable, and wire it up
    shortcut.py     Shortcut: uvloop's reads of whole data frames straight to the tap
    tap.py          FrameTap: the parser interface aiohttp calls, `behind`, `relay`
      handover.py     Handover: the decoded path until the first safe message boundary
      relaying.py     Relaying: any data frame, piece by piece; written once it is whole
      fastpath.py     FastPaths: whole, final, short frames in one loop per read (hot path)
      checks.py       HeaderChecks: headers refused with aiohttp's codes and reasons
      reader.py       ReaderSide: bytes and failures handed to aiohttp's reader
      output.py       Output: one write per read, counts, pausing the sender
      state.py        TapState: every field of a tap, and the message states
    frameformat.py  opcodes, header layout, UTF-8: pure functions and constants
    masking.py      wsrelay's own mask keys and the key arithmetic of re-masking
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire import Wire
from .shortcut import install_shortcut
from .tap import FrameTap

if TYPE_CHECKING:
    from ..websocket import WebSocket


def bridge(client: WebSocket, upstream: WebSocket) -> bool:
    """Relay a proxied client's data frames to its upstream and back without decoding them.

    False (the decoded path stays) unless both sides have plain, uncompressed wires and
    frame scanners to put a tap behind.
    """
    for ws in (client, upstream):
        if type(ws.wire) is not Wire or ws.wire.compressed or ws.wire.queue is None:
            return False
    taps = [_tap(client, masked=True), _tap(upstream, masked=False)]
    if taps[0] is None or taps[1] is None:
        return False
    taps[0].relay(client, upstream, mask_out=True)
    taps[1].relay(upstream, client, mask_out=False)
    install_shortcut(client, taps[0])
    install_shortcut(upstream, taps[1])
    return True


def _tap(ws: WebSocket, *, masked: bool) -> FrameTap | None:
    """The connection's tap: put behind its frame scanner, or already there."""
    front = getattr(ws.wire.transport.get_protocol(), "_payload_parser", None)
    if isinstance(front, FrameTap):
        return front
    inner = getattr(front, "_inner", None)
    if inner is None or getattr(front, "_refused", False) or getattr(front, "discarding", False):
        return None
    return inner if isinstance(inner, FrameTap) else FrameTap.behind(front, masked=masked)


__all__ = ["FrameTap", "bridge"]
