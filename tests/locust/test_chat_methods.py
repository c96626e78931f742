"""A chat app's own HTTP methods: ``target.chat.method`` and ``target.chat.end_session.method``.

GIVEN `llmsoak stub` on 127.0.0.1 (its chat app takes POST /chat and DELETE /chat/{id} only) and
a chat-app profile asking for PUT requests and POST session ends, WHEN Locust runs it headless,
THEN the requests go out with those methods, and the stub's refusal (405) is what Locust records,
with the stub's own reason.
"""

from __future__ import annotations

from support.locust_runs import count, run_locust, stats_rows, write_profile


def test_chat_requests_and_session_ends_use_the_profiles_methods(start_stub, tmp_path):
    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1")
    profile = write_profile(tmp_path, flavour="chat", chat_stream="none", name="methods")
    text = profile.read_text().replace("chat: {stream: none}",
                                       "chat: {stream: none, method: put, end_session: {method: POST}}")
    assert "method: put" in text
    profile.write_text(text)
    out = tmp_path / "run"
    proc = run_locust(profile, stub.url, out, users=3, seconds=4)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = stats_rows(out)
    sent = {(t, n) for (t, n) in rows if n.startswith("/chat")}
    assert ("PUT", "/chat [active]") in sent, sorted(rows)
    assert not [k for k in sent if k[0] == "DELETE" or k == ("POST", "/chat [active]")], sorted(sent)
    puts = count(rows, "PUT")
    assert puts > 0 and sum(int(r["Failure Count"]) for (t, _n), r in rows.items() if t == "PUT") == puts
    ends = [(t, n) for (t, n) in sent if n.startswith("/chat/{session_id}")]
    assert ends and all(t == "POST" for t, _n in ends), sorted(sent)
    failures = (out / "st_failures.csv").read_text()
    assert "method PUT not allowed for /chat" in failures, failures[-2000:]  # the stub's own reason
