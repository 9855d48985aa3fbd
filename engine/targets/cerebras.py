"""The Cerebras Inference API as a target: chat completions with Predicted Outputs.

`https://api.cerebras.ai/v1`, key from `$CEREBRAS_API_KEY`. Chat models get the short chat
prompt of engine/targets/remote_prompt.py; an edit's original region goes as the predicted
output (`prediction`), the server's own speculative edit, on every model unless
`$SPARKEDIT_REMOTE_PREDICTION` names the ones that take it (a model that refuses it is
asked again without, once). Requests ask `max_completion_tokens`; the last chunk carries
`usage` and `time_info`, which become the answer's stats and `timing.remote`.
"""

from __future__ import annotations

from engine.targets.remote import RemoteTarget
from engine.targets.remote_config import RemotePreset

PRESET = RemotePreset(
    target="cerebras",
    base_url="https://api.cerebras.ai/v1",
    key_env="CEREBRAS_API_KEY",
    key_required=True,
    defaults={
        "endpoint": "chat",
        "context_limit": 128_000,
        "prediction_models": None,  # every model; refusals are remembered per model
        "max_tokens_field": "max_completion_tokens",
        "max_stop_sent": 4,
        "stream_usage": False,  # usage and time_info come in the last chunk anyway
    },
)


class CerebrasTarget(RemoteTarget):
    """`CerebrasTarget.from_settings(base_url=..., model=...)` builds one from the preset."""

    name = "cerebras"
    preset = PRESET
