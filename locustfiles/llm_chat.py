"""llmsoak's Locust entry point: chat users from a profile, LLM metrics in Locust's own stats.

    locust -f locustfiles/llm_chat.py --profile profiles/smoke.yaml [-H URL]
    locust -f locustfiles/llm_chat.py --profile P.yaml --headless -u 8 -r 2 -t 10m --csv out/stats
    locust -f locustfiles/llm_chat.py --profile P.yaml --processes 4        # or --master / --worker

The profile (``--profile`` or $LLMSOAK_PROFILE) decides the user classes (ActiveUser, CasualUser,
SporadicUser, StressUser, custom ones) and the load shape, so it is read at import; an invalid
profile prints one line and exits 2 before any request. ``-H`` overrides ``target.url``.
In the web UI the start form's Profile field may name another profile: it is checked before the
test starts and applied on the master and every worker (docs/webui.md).
All logic lives in llmsoak.locust (llmsoak/locust/entry.py); see docs/locust.md.
"""

from locust import events

import llmsoak.webui
from llmsoak.locust.entry import add_arguments, init_environment, load_profile_from_argv

profile, user_classes = load_profile_from_argv()
globals().update(user_classes)
# The Soak and LLM tabs and the /llmsoak/ chart page (web UI mode, master only; see docs/webui.md).
llmsoak.webui.install()


@events.init_command_line_parser.add_listener
def _arguments(parser):
    add_arguments(parser)


@events.init.add_listener
def _init(environment, **_kwargs):
    init_environment(environment, profile, user_classes)
