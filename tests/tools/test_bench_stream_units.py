"""`bench --receive`'s accounting without sockets: parsing, loss, order, duplicates, the delay."""

from __future__ import annotations

import json
import struct

import pytest

from service.tools.bench_plan import BenchConfig, Payloads
from service.tools.bench_report import injected_faults, summarize
from service.tools.bench_stream import StreamCheck, expected_count, parse_stream_message
from service.tools.bench_worker import WorkerResult
from service.tools.target import Target

SECOND = 1_000_000_000


def test_text_and_binary_messages_give_seq_and_ts() -> None:
    padded = json.dumps({"seq": 3, "ts": 17, "pad": "x" * 40})
    assert parse_stream_message(padded) == (3, 17)
    assert parse_stream_message(struct.pack("!QQ", 5, 2**62) + b"\0" * 8) == (5, 2**62)
    for bad in ("hello", "[1, 2]", '{"seq": 1}', '{"seq": "1", "ts": 2}', '{"seq": -1, "ts": 2}'):
        with pytest.raises(ValueError, match="seq and ts"):
            parse_stream_message(bad)
    with pytest.raises(ValueError, match="shorter"):
        parse_stream_message(b"\x00" * 15)


def test_in_order_stream_has_no_loss_and_its_delays() -> None:
    check = StreamCheck()
    delays = [check.arrived(seq, seq * SECOND, seq * SECOND + 50_000_000) for seq in range(5)]
    assert delays == pytest.approx([0.05] * 5)
    assert (check.received, check.out_of_order, check.duplicates) == (5, 0, 0)
    assert check.lost(expected=5, complete=True) == 0


def test_gaps_late_arrivals_duplicates_and_a_missing_tail() -> None:
    check = StreamCheck()
    for seq in (0, 1, 4, 2, 2, 6):
        check.arrived(seq, 0, 1)
    assert check.out_of_order == 1  # 2 came after 4
    assert check.duplicates == 1  # the second 2
    assert check.lost(expected=None, complete=True) == 2  # 3 and 5
    assert check.lost(expected=10, complete=True) == 5  # ... and 7, 8, 9 after the close
    assert check.lost(expected=10, complete=False) == 2  # cut short by us: the tail is not lost


def test_a_ts_ahead_of_our_clock_is_counted_not_negative() -> None:
    check = StreamCheck()
    assert check.arrived(0, 2 * SECOND, SECOND) == 0.0
    assert check.clock_ahead == 1


def test_expected_count_and_injected_faults_come_from_the_url() -> None:
    url = "ws://h/stream?rate=100&count=500&delay=50ms&jitter=10ms&app=x"
    assert expected_count(url) == 500
    assert expected_count("ws://h/stream?duration=2s") is None
    assert injected_faults(url) == {"delay": "50ms", "jitter": "10ms"}


def test_the_summary_names_stream_errors_and_the_injected_delay() -> None:
    url = "ws://h/stream?count=10&delay=50ms"
    config = BenchConfig(Target(url), connections=2, duration=5.0, receive=True)
    result = WorkerResult(0, received=17, lost=3, out_of_order=1)
    result.latency.record(0.051)
    summary = summarize(config, [result])
    assert summary["mode"] == "receive only"
    assert summary["stream"] == {
        "expected_per_connection": 10,
        "out_of_order": 1,
        "duplicates": 0,
        "clock_ahead": 0,
    }
    assert summary["errors"] == {"never arrived (lost)": 3, "out of order": 1}
    assert summary["faults"] == {"delay": "50ms"}
    assert any("injected on purpose (delay=50ms)" in note for note in summary["client"]["notes"])


def test_receive_refuses_options_that_send() -> None:
    with pytest.raises(ValueError, match="--receive sends nothing"):
        BenchConfig(Target("ws://h/stream"), rate=10.0, receive=True)


def test_an_echo_names_its_message_so_a_dropped_one_is_not_misread() -> None:
    text, binary, short = Payloads(32, False), Payloads(20, True), Payloads(8, False)
    assert text.seq_of(text.make(41)) == 41
    assert binary.seq_of(binary.make(7)) == 7
    assert short.seq_of(short.make(3)) is None  # too short to carry all of k: matched by order
    assert text.seq_of("not hex at all, not a payload ..") is None
