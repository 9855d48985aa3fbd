"""EngineProcess and Assistant against a real engine process (no LSP in between)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat

import pytest

from engine.backend_choice import ggml_available
from engine.models import default_model_dir, untrained_model_dir
from lsp_server.assistant import Assistant, AssistantCallbacks
from lsp_server.completion import CompletionOptions
from lsp_server.documents import Encoding, Position
from lsp_server.engine_process import EngineOptions, EngineProcess, EngineStartError

UNTRAINED = str(untrained_model_dir())


async def test_start_is_private_and_stop_cleans_up():
    states: list[str] = []
    engine = EngineProcess(EngineOptions(model=UNTRAINED), on_state=lambda s, m: states.append(s))
    handle = await engine.handle()
    try:
        assert (await handle.client.health()) is not None
        assert handle.info["fim_order"] in ("spm", "psm")
        folder = engine._socket_dir
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert await engine.handle() is handle  # reused, not restarted
    finally:
        await engine.stop()
    assert states == ["starting", "ready"]
    assert not os.path.exists(folder)
    with pytest.raises(ProcessLookupError):
        os.kill(handle.pid, 0)  # terminated and reaped


async def test_a_dead_engine_is_restarted_on_the_next_request():
    engine = EngineProcess(EngineOptions(model=UNTRAINED))
    try:
        first = await engine.handle()
        os.kill(first.pid, signal.SIGKILL)
        await _wait_until(engine.died)
        second = await engine.handle()
        assert second.pid != first.pid and second.generation == first.generation + 1
        assert (await second.client.tokenize("def"))["tokens"]
        # A late failure seen on the old engine must not kill the new one.
        engine.mark_broken("stale", generation=first.generation)
        assert engine.current is second
    finally:
        await engine.stop()


@pytest.mark.parametrize(("backend", "quant"), [
    ("numpy", None),
    pytest.param("ggml", "q8_0", marks=pytest.mark.skipif(
        not ggml_available(), reason="the ggml extra (llama-cpp-python) is not installed")),
])
async def test_backend_and_quant_reach_the_engine(backend, quant):
    engine = EngineProcess(EngineOptions(model=UNTRAINED, backend=backend, quant=quant))
    try:
        info = (await engine.handle()).info
        assert info["backend"] == backend, info.get("backend_reason")
        assert info["weights"] == (quant or "f32")
    finally:
        await engine.stop()


async def test_a_model_that_cannot_load_is_a_clear_start_error(tmp_path):
    engine = EngineProcess(EngineOptions(model=str(tmp_path / "nothing-here")))
    with pytest.raises(EngineStartError, match="exited with code"):
        await engine.handle()
    await engine.stop()


async def test_engine_dying_mid_request_answers_none_then_recovers():
    statuses: list[dict] = []
    warnings: list[str] = []
    assistant = Assistant(engine=EngineOptions(model=UNTRAINED),
                          completion=CompletionOptions(max_tokens=4),
                          callbacks=AssistantCallbacks(status=statuses.append,
                                                       warn=warnings.append))
    assistant.documents.open("u", "def f(x):\n    return x\n", 1)
    at = Position(line=1, character=12)
    try:
        assert await assistant.inline_completion("u", at, Encoding.UTF16) is not None
        pid = assistant.status()["enginePid"]
        # Killed with no chance for the loop to notice first: the request itself fails
        # on the closed connection (not on the process check) and must degrade to None.
        os.kill(pid, signal.SIGKILL)
        assistant.inline.cache.invalidate("u")  # a repeated request would be answered from it
        assert await assistant.inline_completion("u", at, Encoding.UTF16) is None
        assert any(s["state"] == "restarting" for s in statuses)
        again = await assistant.inline_completion("u", at, Encoding.UTF16)
        assert again is not None and again.suggestion is not None
        assert again.suggestion.untrained
        assert assistant.status()["enginePid"] != pid
        assert len(warnings) == 1  # the untrained warning is said once, not per engine
    finally:
        await assistant.stop()


async def _wait_until(predicate, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


def test_a_setting_cleared_to_null_returns_to_the_command_line_value():
    assistant = Assistant(engine=EngineOptions(model=UNTRAINED), completion=CompletionOptions(),
                          callbacks=AssistantCallbacks(status=lambda s: None,
                                                       warn=lambda m: None))
    assert assistant.options.model == UNTRAINED
    elsewhere = str(default_model_dir())
    problems, _ = assistant.configure({"sparkedit": {"model": elsewhere, "budget": 512}})
    assert not problems and assistant.options.model == elsewhere
    assistant.configure({"sparkedit": {"model": None}})
    assert assistant.options.model == UNTRAINED and assistant.options.budget == 512
    assistant.kill_now()


async def test_a_new_backend_or_quant_restarts_the_engine_with_it():
    assistant = Assistant(engine=EngineOptions(model=UNTRAINED, backend="numpy"),
                          completion=CompletionOptions(max_tokens=2),
                          callbacks=AssistantCallbacks(status=lambda s: None,
                                                       warn=lambda m: None))
    try:
        assert (assistant.options.backend, assistant.options.quant) == ("numpy", None)
        first = await assistant._engine.handle()
        assert first.info["backend"] == "numpy"
        problems, _ = assistant.configure({"backend": "gpu", "quant": "q2"})
        assert len(problems) == 2 and "'backend'" in problems[0] and "'quant'" in problems[1]
        assert assistant._engine.current is first  # bad values: kept, no restart
        assistant.configure({"sparkedit": {"quant": "bf16"}})
        assert assistant._engine.current is None and assistant.status()["state"] == "stopped"
        assert assistant._engine_options.quant == "bf16"
        assistant.configure({"quant": None})  # back to the command line's (none)
        assert assistant._engine_options.quant is None
        assert assistant._engine_options.backend == "numpy"
    finally:
        await assistant.stop()


@pytest.mark.parametrize("bad", ["truncated.gguf", "missing-folder", "not-a-model.gguf"])
async def test_a_model_setting_that_cannot_load_keeps_the_engine_serving(tmp_path, bad):
    pytest.importorskip("llama_cpp", reason="the ggml extra is not installed")
    from engine.ggml.gguf_cache import converted_gguf

    target = tmp_path / bad
    if bad == "truncated.gguf":
        data = converted_gguf(untrained_model_dir(), "q8_0").read_bytes()
        target.write_bytes(data[: len(data) // 3])
    elif bad == "not-a-model.gguf":
        target.write_text("hello\n")
    assistant = Assistant(engine=EngineOptions(model=UNTRAINED, backend="numpy"),
                          completion=CompletionOptions(max_tokens=2),
                          callbacks=AssistantCallbacks(status=lambda s: None,
                                                       warn=lambda m: None))
    try:
        first = await assistant._engine.handle()
        problems, _ = assistant.configure({"model": str(target), "backend": "ggml"})
        assert len(problems) == 1 and "keeps serving" in problems[0]
        assert str(target) in problems[0] and "\n" not in problems[0]
        assert assistant._engine.current is first  # nothing restarted
        assert (assistant.options.model, assistant.options.backend) == (UNTRAINED, "numpy")
        assert (await first.client.generate({"prompt": "x = ", "max_tokens": 2}))["tokens"]
    finally:
        await assistant.stop()
