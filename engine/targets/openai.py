"""Any OpenAI-compatible server as a target: vLLM, SGLang, llama.cpp's server, Ollama.

Default address `http://127.0.0.1:8000/v1` (vLLM's); a key from `$OPENAI_API_KEY` when
the server wants one. The default endpoint is /completions with the prompt as text,
special markers kept, so a Qwen2.5-Coder checkpoint gets exactly the fill-in-the-middle
prompt it was trained on; `$SPARKEDIT_REMOTE_ENDPOINT=chat` switches to the chat layout.
`stream_options.include_usage` asks for token counts at the end of the stream.
"""

from __future__ import annotations

from engine.targets.remote import RemoteTarget
from engine.targets.remote_config import RemotePreset

PRESET = RemotePreset(
    target="openai",
    base_url="http://127.0.0.1:8000/v1",
    key_env="OPENAI_API_KEY",
    key_required=False,
    defaults={
        "endpoint": "completions",
        "context_limit": 32_768,
        "prediction_models": frozenset(),  # few servers take `prediction`; opt in by name
        "max_tokens_field": "max_tokens",
        "max_stop_sent": 4,
        "stream_usage": True,
    },
)


class OpenAITarget(RemoteTarget):
    """`OpenAITarget.from_settings(base_url=..., model=...)` builds one from the preset."""

    name = "openai"
    preset = PRESET
