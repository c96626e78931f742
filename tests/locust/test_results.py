"""Failure classes (llmsoak.locust.results): every failure in exactly one class, first cause wins."""

from __future__ import annotations

import json

from llmsoak.locust.results import FAILURE_CLASSES, RequestResult, classify_exception
from llmsoak.locust.streams import StreamTooLarge


def test_classify_exception_names():
    class HTTPParseError(Exception):
        pass
    assert classify_exception(HTTPParseError("Incomplete response."))[0] == "disconnect"
    assert classify_exception(ConnectionRefusedError(111, "refused")) == ("disconnect", "connection refused")
    assert classify_exception(RuntimeError("x")) == ("other", "RuntimeError")


def test_each_exception_kind_lands_in_a_documented_class():
    cases = {
        TimeoutError("timed out"): "timeout",
        TimeoutError(): "timeout",
        json.JSONDecodeError("x", "doc", 0): "malformed",
        StreamTooLarge("big"): "malformed",
        ValueError("not an object"): "malformed",
        ConnectionResetError(104, "reset"): "disconnect",
        BrokenPipeError(32, "pipe"): "disconnect",
        OSError(2, "other"): "other",
    }
    for exc, cls in cases.items():
        assert classify_exception(exc)[0] == cls, exc
        assert cls in FAILURE_CLASSES


def test_the_first_failure_wins_and_reads_as_class_colon_detail():
    r = RequestResult(status=200)
    assert r.ok
    r.fail("timeout", "no data within the network timeout").fail("disconnect", "connection reset")
    assert not r.ok and r.failure_message == "timeout: no data within the network timeout"
