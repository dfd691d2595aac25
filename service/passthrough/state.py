"""`TapState`: what a tap knows about its connection's byte stream, in one place.

Every module of the tap is a layer over this class (see the package); it alone declares
`__slots__`, so a tap has no `__dict__` and each field is a slot read, as in one class.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Any

from .frameformat import header

if TYPE_CHECKING:
    from ..websocket import WebSocket

#: `_message`: no message in progress, or not known yet (a tap that took over mid-stream).
#: (-2, written as a literal where it is used: the message ends with the current frame.)
NONE = 0
UNKNOWN = -1


class TapState:
    """A tap's fields. `masked` says the peer is a client (its frames must be masked,
    RFC 6455 5.1); `left` and `head` say where a tap that starts mid-stream stands."""

    __slots__ = (
        "_control",
        "_decoder",
        "_dst",
        "_failed",
        "_frame_key",
        "_frame_offset",
        "_frame_op",
        "_frame_out",
        "_frame_size",
        "_head",
        "_inner",
        "_left",
        "_limit",
        "_mask_out",
        "_masked",
        "_message",
        "_message_size",
        "_out",
        "_out_protocol",
        "_own_key",
        "_paused",
        "_queue",
        "_queue_limit",
        "_relaying",
        "_skip_fed",
        "_src",
        "_stopped",
    )

    def __init__(
        self, inner: Any, queue: Any, *, masked: bool, left: int = 0, head: bytes = b""
    ) -> None:
        self._inner = inner
        self._queue = queue
        self._masked = masked
        #: Payload bytes of the current frame still to come; a split header waits in `_head`.
        self._left = left
        self._head = head
        #: Leading bytes of `_head` that aiohttp's reader has already had (see `behind`).
        self._skip_fed = len(head)
        #: A tap that starts mid-stream does not know whether a fragmented message is open.
        self._message = UNKNOWN if left or head else NONE
        self._message_size = 0
        self._control = False  # the current frame is a control frame (it goes to `inner`)
        self._frame_op = 0
        self._frame_key = b""  # the sender's mask key of the current frame
        self._own_key = b""  # the key the current frame is re-masked with
        self._frame_offset = 0
        self._frame_size = 0
        #: The current data frame as it goes out, written once it is whole.
        self._frame_out: bytearray | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._failed = False
        self._src: WebSocket | None = None
        self._dst: WebSocket | None = None
        self._limit = 0
        self._mask_out = False
        #: Set by `relay`: the receiver's transport and protocol (its wire is plain), and the
        #: receiver's SEND_QUEUE_BYTES.
        self._out: Any = None
        self._out_protocol: Any = None
        self._queue_limit = 0
        self._relaying = False
        self._stopped = False  # after a close frame: the decoded path for good
        self._paused = False

    #: A method, as before the split: the hot loops call `self._header`.
    _header = staticmethod(header)
