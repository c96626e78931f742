"""llmsoak's Locust side: chat users from a profile, LLM metrics in Locust's own stats.

Entry point: ``locustfiles/llm_chat.py`` → :mod:`llmsoak.locust.entry`. The modules, in the order a
request flows, and the one module that touches Locust's internals (``internals``), are drawn in
docs/locust.md ("How the code is laid out"). Nothing is imported here: importing Locust patches
the process with gevent, so each module imports what it needs.
"""
