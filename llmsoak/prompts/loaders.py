"""Prompt files → conversations: the built-in corpus, JSONL and ShareGPT JSON.

JSONL: one JSON object per line, either ``{"prompt": "...", "follow_ups": ["...", ...]}``
(``follow_ups`` optional) or ``{"messages": [{"role": "user", "content": "..."}, ...]}`` (the
user messages become the opening and follow-ups; others are ignored). Blank lines are skipped.

ShareGPT: a JSON list of ``{"conversations": [{"from": "human", "value": "..."},
{"from": "gpt", "value": "..."}, ...]}``; the human turns are used.

Any problem raises ProfileError naming the file and line (or item) and what is wrong.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from llmsoak.profile import ProfileError
from llmsoak.prompts.source import DEFAULT_FOLLOW_UPS, Conversation

_USER_ROLES = {"user", "human"}
_SHAREGPT_HUMAN = {"human", "user"}
MAX_MESSAGE_CHARS = 1_000_000
"""A single message longer than this is refused (probably not a prompt)."""


def load_builtin() -> list[Conversation]:
    """The corpus shipped in the package (llmsoak/prompts/corpus.json)."""
    text = resources.files("llmsoak.prompts").joinpath("corpus.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    generic = tuple(doc.get("generic_follow_ups") or DEFAULT_FOLLOW_UPS)
    return [Conversation(c["opening"], tuple(c["follow_ups"]), f"builtin:{c['id']}", generic)
            for c in doc["conversations"]]


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: expected a non-empty string, got {value!r:.60}")
    if len(value) > MAX_MESSAGE_CHARS:
        raise ProfileError(f"{where}: message of {len(value)} characters is too long "
                           f"(at most {MAX_MESSAGE_CHARS})")
    return value


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such prompt file") from None
    except UnicodeDecodeError as err:
        raise ProfileError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise ProfileError(f"{path}: cannot read: {err.strerror or err}") from None


def load_jsonl(path: str | Path) -> list[Conversation]:
    """Conversations from a JSONL prompt file (see the module docstring for the two line forms)."""
    path = Path(path)
    out: list[Conversation] = []
    for lineno, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ProfileError(f"{where}: not valid JSON: {err.msg} (column {err.colno})") from None
        if not isinstance(obj, dict):
            raise ProfileError(f"{where}: expected an object with \"prompt\" or \"messages\"")
        if "prompt" in obj:
            follow = obj.get("follow_ups") or []
            if not isinstance(follow, list):
                raise ProfileError(f"{where}: follow_ups: expected a list of strings")
            out.append(Conversation(_text(obj["prompt"], f"{where}: prompt"),
                                    tuple(_text(f, f"{where}: follow_ups[{i}]") for i, f in enumerate(follow)),
                                    f"{path.name}:{lineno}"))
        elif "messages" in obj:
            msgs = obj["messages"]
            if not isinstance(msgs, list):
                raise ProfileError(f"{where}: messages: expected a list of {{role, content}} objects")
            users = []
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or "role" not in m:
                    raise ProfileError(f"{where}: messages[{i}]: expected {{\"role\": ..., \"content\": ...}}")
                if m["role"] in _USER_ROLES:
                    users.append(_text(m.get("content"), f"{where}: messages[{i}].content"))
            if not users:
                raise ProfileError(f"{where}: messages: no message with role \"user\"")
            out.append(Conversation(users[0], tuple(users[1:]), f"{path.name}:{lineno}"))
        else:
            raise ProfileError(f"{where}: expected a \"prompt\" or \"messages\" field "
                               f"(got {', '.join(sorted(map(str, obj))) or 'an empty object'})")
    if not out:
        raise ProfileError(f"{path}: no prompts in file (one JSON object per line expected)")
    return out


def load_sharegpt(path: str | Path) -> list[Conversation]:
    """Conversations from ShareGPT-format JSON (human turns only)."""
    path = Path(path)
    try:
        doc = json.loads(_read(path))
    except json.JSONDecodeError as err:
        raise ProfileError(f"{path}:{err.lineno}: not valid JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(doc, list):
        raise ProfileError(f"{path}: expected a JSON list of {{\"conversations\": [...]}} objects")
    out: list[Conversation] = []
    for i, item in enumerate(doc):
        where = f"{path}: item [{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("conversations"), list):
            raise ProfileError(f"{where}: expected {{\"conversations\": [{{\"from\": ..., \"value\": ...}}]}}")
        humans = []
        for j, turn in enumerate(item["conversations"]):
            if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
                raise ProfileError(f"{where}.conversations[{j}]: expected {{\"from\": ..., \"value\": ...}}")
            if turn["from"] in _SHAREGPT_HUMAN and isinstance(turn["value"], str) and turn["value"].strip():
                humans.append(_text(turn["value"], f"{where}.conversations[{j}].value"))
        if humans:  # ShareGPT dumps contain empty or assistant-only items: skip, don't fail
            ident = item.get("id", i)
            out.append(Conversation(humans[0], tuple(humans[1:]), f"{path.name}#{ident}"))
    if not out:
        raise ProfileError(f"{path}: no conversation with a human turn")
    return out
