"""llmsoak's capacity locustfile: started by ``llmsoak capacity``, never by hand.

    $LLMSOAK_CAPACITY_PLAN=plan.json locust -f locustfiles/capacity.py --profile P.yaml --headless ...

The plan (written by llmsoak.capacity.sweep) says which phases to run: open-loop rates,
closed-loop concurrencies, or the profile's users; every request is recorded for the sweep's
statistics. All logic lives in llmsoak/capacity/locust_side.py; see docs/capacity.md.
"""

from locust import events

from llmsoak.capacity.locust_side import init_environment, load_plan, user_classes
from llmsoak.locust.entry import _die, profile_path_from_argv
from llmsoak.locust.profile_switch import ProfileSwitchError, prepare_profile

_plan = load_plan()
try:
    _prepared = prepare_profile(profile_path_from_argv(__import__("sys").argv) or "")
except ProfileSwitchError as _err:
    _die(str(_err))
globals().update(user_classes(_prepared.profile, _prepared.prompt_source, _plan))

# Locust's own --profile option carries the profile's path (llmsoak's llm_chat.py does the same).


events.init.add_listener(init_environment)
