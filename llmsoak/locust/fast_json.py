"""JSON for stream events, faster than ``json.loads`` and exactly as strict.

A streamed reply is hundreds of small JSON documents, so the Python layers of ``json.loads``
cost more than its C scanner. Two shortcuts, both falling back to ``json.loads`` for anything
they cannot prove equal, so a *malformed* event is still exactly one that ``json.loads`` rejects:

* :func:`parse_json`: a payload that is UTF-8 and one complete JSON value from its first to its
  last byte goes straight to the C scanner;
* :class:`ContentShortcut`: within one response, the content events differ only in their text;
  once learned from the first, later ones are read with json's C string scanner, without
  building their objects.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llmsoak.locust.results import RequestResult

if TYPE_CHECKING:
    from llmsoak.locust.apis import Flavour

_loads = json.loads
_scan_once = json.JSONDecoder().scan_once  # the C scanner behind json.loads (json.scanner.c_make_scanner)


def parse_json(payload: bytes) -> Any:
    """``json.loads(payload)``, minus its Python-level overhead for the common case.

    Each stream event is one small JSON document, so most of ``json.loads``' cost is its Python
    layers (encoding detection, ``decode`` → ``raw_decode``, two whitespace regex matches), not
    the C scanner. A payload that is UTF-8 and one complete JSON value from its first to its last
    byte is scanned directly; anything else (leading/trailing whitespace, other encodings, and
    every invalid document) goes to ``json.loads``, which returns or raises exactly as before.
    So *malformed* keeps its meaning: not valid JSON by ``json.loads``' rules.
    """
    try:
        text = payload.decode()
        obj, end = _scan_once(text, 0)
        if end == len(text):
            return obj
    except (StopIteration, ValueError):  # ValueError covers JSONDecodeError and UnicodeDecodeError
        pass
    return _loads(payload)


_scanstring = json.decoder.scanstring  # C: (JSON string body after its opening quote, index) → (str, end)
_PROBE_TEXT = "\x01llmsoak-probe\x02"
_PROBE = json.dumps(_PROBE_TEXT).encode()


class ContentShortcut:
    """Reads the text of a stream's content events without building their JSON objects.

    Within one response, the content events of LLM servers are byte-identical except for the
    text: ``{"id":"chatcmpl-1",...,"delta":{"content":"<TEXT>"},...}``. After the first content
    event was parsed the normal way, :meth:`learn` splits it into ``prefix`` + the text's JSON
    string literal + ``suffix``, and accepts that template only if it is unambiguous: the literal
    occurs once, and the flavour's own ``decode_event`` applied to ``prefix + probe + suffix``
    returns exactly the probe text and records nothing else (no usage, no end marker).

    :meth:`text` then takes an event that starts with ``prefix`` and ends with ``suffix`` and
    returns its middle if the middle is exactly one valid JSON string literal (checked by
    json's C ``scanstring``, strict like ``json.loads``) with non-empty text. Such an event is
    valid JSON (one string token replaced by another in a valid document) and decodes to the
    same object with only that string changed, so the flavour would return exactly that text.
    Anything else returns None and takes the full path (:func:`parse_json` + ``decode_event``),
    so a malformed event is still exactly one that ``json.loads`` rejects.
    """

    __slots__ = ("prefix", "suffix", "_start", "_tail")

    def __init__(self) -> None:
        self.prefix: bytes | None = None
        """Everything before the text, its opening quote included; None until learned."""
        self.suffix = b""
        """Everything after the text's closing quote."""
        self._start = self._tail = 0

    def learn(self, payload: bytes, text: str, flavour: Flavour) -> None:
        """Derive the template from a content event already decoded (by the full path) to ``text``."""
        for literal in {json.dumps(text).encode(), json.dumps(text, ensure_ascii=False).encode()}:
            at = payload.find(literal)
            if at < 0 or payload.find(literal, at + 1) >= 0:
                continue
            prefix, suffix = payload[:at], payload[at + len(literal):]
            probe = RequestResult()
            try:
                ok = flavour.decode_event(parse_json(prefix + _PROBE + suffix), probe) == _PROBE_TEXT
            except Exception:  # noqa: BLE001 - an unusable template, not a failure of the request
                ok = False
            if ok and probe == RequestResult():
                self.prefix, self.suffix = prefix + b'"', suffix
                self._start, self._tail = len(self.prefix), len(suffix)
                return

    def text(self, payload: bytes) -> str | None:
        """The event's text when it fits the template (see the class docstring), else None."""
        if not (payload.startswith(self.prefix) and payload.endswith(self.suffix)):
            return None
        try:
            # The rest of the literal: its characters and closing quote. scanstring starts after
            # an opening quote and returns the index after the closing one; an empty or
            # overlapping slice, a bad escape, a raw control character or bad UTF-8 raise.
            rest = payload[self._start:len(payload) - self._tail].decode()
            text, end = _scanstring(rest, 0)
        except ValueError:
            return None
        return text if end == len(rest) and text else None
