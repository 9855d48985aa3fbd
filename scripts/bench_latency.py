"""Keystroke -> ghost text through the real stdio language server, replaying typing sessions.

Each session of scripts/sessions/ (real code, SYNTHETIC human timing: see
scripts/make_typing_sessions.py) runs against a fresh `sparkedit lsp` over stdio, driven by
a pygls `LanguageClient` that behaves like an editor:
- initialize with the repository as root (the server indexes it, reporting work-done
  progress), open the session's document, wait for the index, then ask once for a
  completion at the cursor: that first answer is the cold start (engine spawn, model load);
- replay the keystrokes at their recorded times (divided by `--speed`): each one is an
  incremental didChange (utf-16 positions) followed by `textDocument/inlineCompletion`; a
  request still unanswered at the next keystroke gets `$/cancelRequest` and its answer is
  ignored, as in VS Code;
- time every answered request from its keystroke to the answer ("keystroke -> ghost text");
- ghost text on screen is reported with `sparkedit/didShow {id}` (the id is the item's
  `command.arguments[0]`; an item without one gets no feedback). The simulated user accepts
  it (Tab) when it is at least 3 characters and exactly what they are about to type: one
  didChange with the accepted text, `sparkedit/didAccept {id, acceptedLength}`, and the
  session skips those keystrokes (the Tab takes one keystroke's time). A key that does not
  match the ghost text dismisses it with `sparkedit/didReject {id}`;
- at the end, read the server's own counters from `sparkedit/status` (`stats`); "n/a" when
  the server does not report them.

Baseline, measured in the same run after the LSP runs: the engine alone. The same document
states (every change the client sent, at the same times) go through the same prompt builder
(`complete_in_workspace` over a `Workspace` of the same root) straight to a `sparkedit
engine`, one request per keystroke, sequentially, nothing cancelled or cached. The ratio of
the p50s is what the language server adds to, or saves over, a plain engine round trip.

Prints markdown tables and writes JSON (default bench_results/latency.json).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import typing_sessions as ts
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.lsp.client import LanguageClient

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.completion import CompletionOptions, complete_in_workspace
from lsp_server.documents import DocumentStore, Encoding, Range, TextChange
from lsp_server.engine_process import EngineOptions, EngineProcess
from lsp_server.workspace import Workspace, WorkspaceSettings

REPO = Path(__file__).resolve().parent.parent
INLINE = types.TEXT_DOCUMENT_INLINE_COMPLETION
STATUS = "sparkedit/status"
MIN_ACCEPT = 3  # characters of ghost text worth a Tab
LAST_ANSWER_WAIT_S = 10.0


class Replay:
    """One session's keystrokes, sent to a started and initialized client."""

    def __init__(self, client: LanguageClient, session: ts.Session, uri: str,
                 speed: float) -> None:
        self.client, self.session, self.uri, self.speed = client, session, uri, speed
        self.text, self.cursor = session.header.text, session.header.cursor
        self.version = 1
        self.counts = ts.ClientCounts()
        self.steps: list[ts.Step] = []
        self.ghost: ts.Ghost | None = None
        self.latest = 0
        self.pending: tuple[str, asyncio.Task] | None = None
        self.started = time.perf_counter()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.client.protocol.notify(method, params)  # unknown to a server: logged, ignored

    def position(self, offset: int) -> types.Position:
        line, character = ts.utf16_position(self.text, offset)
        return types.Position(line=line, character=character)

    def change(self, start: int, end: int, inserted: str) -> None:
        self.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri,
                                                                version=self.version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=self.position(start), end=self.position(end)),
                text=inserted)]))
        self.text = self.text[:start] + inserted + self.text[end:]
        self.cursor = start + len(inserted)
        self.steps.append(ts.Step(at_s=time.perf_counter() - self.started, start=start,
                                  end=end, inserted=inserted, cursor=self.cursor))

    def params(self, trigger: types.InlineCompletionTriggerKind) -> types.InlineCompletionParams:
        return types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri),
            position=self.position(self.cursor),
            context=types.InlineCompletionContext(trigger_kind=trigger))

    def request(self, keystroke_at: float) -> None:
        if self.pending is not None and not self.pending[1].done():
            self.client.protocol.notify(types.CANCEL_REQUEST,
                                        types.CancelParams(id=self.pending[0]))
            self.counts.cancelled_by_client += 1
        self.latest += 1
        msg_id = f"bench-{self.latest}"
        future = self.client.protocol.send_request_async(
            INLINE, self.params(types.InlineCompletionTriggerKind.Automatic), msg_id=msg_id)
        self.counts.requests += 1
        task = asyncio.create_task(self.answer(self.latest, future, keystroke_at))
        self.pending = (msg_id, task)

    async def answer(self, n: int, future: Any, keystroke_at: float) -> None:
        try:
            answer = await future
        except JsonRpcRequestCancelled:
            self.counts.cancel_confirmed += 1
            return
        except JsonRpcException as exc:
            self.counts.errors += 1
            print(f"  request {n} failed: {exc}", file=sys.stderr)
            return
        if n != self.latest:
            self.counts.late_answers += 1
            return
        ms = (time.perf_counter() - keystroke_at) * 1000
        self.counts.answers += 1
        self.counts.latencies_ms.append(ms)
        items = answer.items if isinstance(answer, types.InlineCompletionList) else answer or []
        text = self.visible(items[0]) if items else None
        if text:
            self.counts.answers_with_ghost += 1
            self.counts.ghost_latencies_ms.append(ms)
            self.show(ts.Ghost(id=ts.item_id(items[0]), text=text))

    def visible(self, item: types.InlineCompletionItem) -> str | None:
        """The ghost text an editor shows at the cursor for `item`, or None."""
        insert = item.insert_text
        insert = insert if isinstance(insert, str) else insert.value
        if item.range is None:
            return insert
        start = ts.utf16_offset(self.text, item.range.start.line, item.range.start.character)
        end = ts.utf16_offset(self.text, item.range.end.line, item.range.end.character)
        typed = self.text[start:end]
        if end != self.cursor or not insert.startswith(typed):
            self.counts.unrenderable += 1
            return None
        return insert[len(typed):]

    def show(self, ghost: ts.Ghost) -> None:
        old = self.ghost
        if old is not None and ghost.id == old.id and (ghost.id is not None
                                                       or ghost.text == old.text):
            self.ghost = ghost  # the same suggestion, typed through
            return
        if old is not None:
            self.counts.superseded += 1
        self.ghost = ghost
        self.counts.shown += 1
        if ghost.id is not None:
            self.notify("sparkedit/didShow", {"id": ghost.id})

    def dismiss(self) -> None:
        assert self.ghost is not None
        if self.ghost.id is not None:
            self.notify("sparkedit/didReject", {"id": self.ghost.id})
        self.counts.rejected += 1
        self.ghost = None

    def try_accept(self, i: int, clean: list[int], first_at: dict[int, int]) -> int | None:
        """Accept the ghost text if it is what comes next; the index of the next event."""
        k, ghost, target = clean[i], self.ghost, self.session.header.target
        if ghost is None or k < 0 or len(ghost.text) < MIN_ACCEPT \
                or not target.startswith(ghost.text, k):
            return None
        # Cut to where a keystroke of the session ends (an accept never splits an Enter).
        length = next((m for m in range(len(ghost.text), MIN_ACCEPT - 1, -1)
                       if k + m in first_at), 0)
        if not length:
            return None
        self.change(self.cursor, self.cursor, ghost.text[:length])
        if ghost.id is not None:
            self.notify("sparkedit/didAccept", {"id": ghost.id, "acceptedLength": length})
        nxt = first_at[k + length]
        self.counts.accepts += 1
        self.counts.partial_accepts += length < len(ghost.text)
        self.counts.chars_saved += length
        self.counts.keys_saved += nxt - i - 1
        self.ghost = None
        return nxt

    def key(self, op: str, text: str) -> None:
        if self.ghost is not None:
            if op == "type" and self.ghost.text.startswith(text):
                self.ghost.text = self.ghost.text[len(text):]
                if not self.ghost.text:
                    self.counts.typed_through += 1
                    self.ghost = None
            else:
                self.dismiss()
        if op == "type":
            self.change(self.cursor, self.cursor, text)
        else:
            self.change(self.cursor - 1, self.cursor, "")

    async def run(self) -> None:
        events = self.session.events
        clean = ts.typed_states(self.session)
        # typed characters -> the first event index before which exactly that many stand
        first_at = {k: index for index, k in reversed(list(enumerate(clean))) if k >= 0}
        self.started = time.perf_counter()
        shift_ms, i = 0.0, 0
        while i < len(events):
            event = events[i]
            due = self.started + (event.t_ms - shift_ms) / self.speed / 1000
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            now = time.perf_counter()
            self.counts.lag_ms.append((now - due) * 1000)
            self.counts.keystrokes += 1
            nxt = self.try_accept(i, clean, first_at)
            if nxt is not None:
                self.request(now)
                if nxt < len(events):  # the next key comes one keystroke after the Tab
                    shift_ms += events[nxt - 1].t_ms - event.t_ms
                i = nxt
                continue
            self.key(event.op, event.text)
            self.request(now)
            i += 1
        if self.pending is not None:
            await asyncio.wait([self.pending[1]], timeout=LAST_ANSWER_WAIT_S)


async def drain(stream: asyncio.StreamReader | None, sink: list[bytes]) -> None:
    # The server logs to stderr; an undrained pipe would eventually block it.
    while stream is not None and (chunk := await stream.read(65536)):
        sink.append(chunk)


async def run_session(session: ts.Session, args: argparse.Namespace) -> ts.SessionResult:
    uri = (REPO / session.header.path).as_uri()
    client = LanguageClient("sparkedit-bench", "0")
    created, indexed = asyncio.Event(), asyncio.Event()
    notices: list[str] = []

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def on_create(_client: LanguageClient, params: types.WorkDoneProgressCreateParams) -> None:
        created.set()

    @client.feature(types.PROGRESS)
    def on_progress(_client: LanguageClient, params: types.ProgressParams) -> None:
        if isinstance(value := ts.plain(params.value), dict) and value.get("kind") == "end":
            indexed.set()

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(_client: LanguageClient, params: types.ShowMessageParams) -> None:
        notices.append(params.message)

    for method in (types.WINDOW_LOG_MESSAGE, STATUS):  # read at the end, not as they come
        client.feature(method)(lambda _client, params: None)

    await client.start_io(sys.executable, "-m", "lsp_server.cli", "lsp",
                          "--log-level", args.server_log_level, cwd=str(REPO))
    stderr: list[bytes] = []
    drainer = asyncio.create_task(drain(client._server.stderr, stderr))
    try:
        return await drive(client, session, uri, args, created, indexed, notices)
    except Exception:
        sys.stderr.write(b"".join(stderr)[-4000:].decode(errors="replace"))
        raise
    finally:
        if not client.stopped:
            try:
                await asyncio.wait_for(client.shutdown_async(None), 10)
                client.exit(None)
            except (JsonRpcException, TimeoutError) as exc:
                print(f"  shutdown: {exc!r}", file=sys.stderr)
        await asyncio.sleep(0.2)
        drainer.cancel()


async def drive(client: LanguageClient, session: ts.Session, uri: str,
                args: argparse.Namespace, created: asyncio.Event, indexed: asyncio.Event,
                notices: list[str]) -> ts.SessionResult:
    header = session.header
    await client.initialize_async(types.InitializeParams(
        process_id=os.getpid(), root_uri=REPO.as_uri(),
        initialization_options={"statsFile": "off"},  # keep the user's lifetime stats clean
        workspace_folders=[types.WorkspaceFolder(uri=REPO.as_uri(), name=REPO.name)],
        capabilities=types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()))))
    started = time.perf_counter()
    client.initialized(types.InitializedParams())
    # Opened before the index is done, as an editor restores its tabs: the index then
    # holds this buffer, not the file on disk that still contains the typed region.
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=header.language_id,
                                             version=1, text=header.text)))
    index_ms = None
    try:
        await asyncio.wait_for(created.wait(), 5)
        await asyncio.wait_for(indexed.wait(), args.index_timeout)
        index_ms = (time.perf_counter() - started) * 1000
    except TimeoutError:
        print("  no index progress from the server; typing without waiting", file=sys.stderr)

    async def ask(method: str, params: Any, timeout_s: float) -> Any:
        try:
            return ts.plain(await asyncio.wait_for(
                client.protocol.send_request_async(method, params), timeout_s))
        except (JsonRpcException, TimeoutError) as exc:
            print(f"  {method} failed: {exc!r}", file=sys.stderr)
            return None

    replay = Replay(client, session, uri, args.speed)
    t0 = time.perf_counter()
    cold = await ask(INLINE, replay.params(types.InlineCompletionTriggerKind.Invoked), 180)
    cold_ms = (time.perf_counter() - t0) * 1000 if cold is not None else None
    await replay.run()
    duration_s = time.perf_counter() - replay.started
    # Both copies of the document must end as the source file's text with the region typed.
    copy = await ask("sparkedit/documentText", {"uri": uri}, 10)
    expected = header.text[:header.cursor] + header.target + header.text[header.cursor:]
    in_sync = replay.text == expected and (
        copy.get("text") == expected if isinstance(copy, dict) else None)
    status = await ask(STATUS, None, 10)
    status = status if isinstance(status, dict) else None
    stats = status.get("stats") if status else None
    return ts.SessionResult(session=session, counts=replay.counts,
                            stats=stats if isinstance(stats, dict) else None, status=status,
                            cold_ms=cold_ms, index_ms=index_ms, duration_s=duration_s,
                            steps=replay.steps, notices=notices, in_sync=in_sync)


async def bench_engine(result: ts.SessionResult, every: int, options: CompletionOptions,
                       into: ts.Baseline) -> None:
    """The client's document states of one session, through the prompt builder, straight
    to a fresh engine: one generate per sampled state, sequentially."""
    header = result.session.header
    uri = (REPO / header.path).as_uri()
    workspace = Workspace(tokenizer=Tokenizer.from_dir(default_model_dir()),
                          settings=WorkspaceSettings(root=REPO))
    store = DocumentStore()
    doc = store.open(uri, header.text, 1, header.language_id)
    workspace.opened(doc)
    await asyncio.to_thread(workspace.build_index)
    process = EngineProcess(EngineOptions(log_level="WARNING"))
    try:
        handle = await process.handle()

        async def complete(document: Any, offset: int) -> Any:
            return await complete_in_workspace(workspace, document, offset, engine=handle.client,
                                               info=handle.info, options=options)

        await complete(doc, header.cursor)  # as the LSP run's cold-start request
        # A virtual clock far ahead of time.monotonic(): bursts of edit history then close
        # at the replayed times (close_open below), not at the real ones.
        clock0 = time.monotonic() + 1e6
        for n, step in enumerate(result.steps):
            before = store.get(uri)
            assert before is not None
            change = TextChange(text=step.inserted, range=Range(
                start=before.position_at(step.start), end=before.position_at(step.end)))
            changed = store.change_with_edits(uri, [change], n + 2, Encoding.UTF16)
            assert not isinstance(changed, Exception) and isinstance(changed, tuple), changed
            now = clock0 + step.at_s
            workspace.changed(*changed, now=now)
            workspace.refresh_dirty(now)
            if n % every:
                continue
            workspace.history.close_open(now)
            t0 = time.perf_counter()
            suggestion = await complete(changed[1], step.cursor)
            into.latencies_ms.append((time.perf_counter() - t0) * 1000)
            into.states += 1
            for key, sink in (("ttft_ms", into.ttft_ms), ("total_ms", into.engine_total_ms)):
                if isinstance(value := suggestion.timing.get(key), int | float):
                    sink.append(float(value))
            into.prompt_tokens += suggestion.stats.get("prompt_tokens") or 0
            into.cached_prompt_tokens += suggestion.stats.get("cached_prompt_tokens") or 0
    finally:
        await process.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Example: bench_latency.py --speed 4 --sessions 1   (a quick check)")
    parser.add_argument("--sessions", default=None, metavar="N|NAME,...",
                        help="the first N sessions, or these names (default: all)")
    parser.add_argument("--session-dir", type=Path, default=REPO / "scripts" / "sessions")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="replay this many times faster than recorded (default 1.0)")
    parser.add_argument("--baseline-every", type=int, default=1, metavar="N",
                        help="time the engine alone on every Nth document state (default 1)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--index-timeout", type=float, default=120.0, metavar="S")
    parser.add_argument("--server-log-level", default="WARNING")
    parser.add_argument("--out", type=Path, default=REPO / "bench_results" / "latency.json")
    args = parser.parse_args()
    if args.speed <= 0 or args.baseline_every < 1:
        parser.error("--speed must be positive and --baseline-every at least 1")
    sessions = ts.pick(ts.load_sessions(args.session_dir), args.sessions)

    options = CompletionOptions()  # the server runs with its defaults; so does the baseline
    results = []
    for session in sessions:
        print(f"session {session.name}: {len(session.events)} keystrokes, "
              f"~{session.events[-1].t_ms / 1000 / args.speed:.0f} s at speed {args.speed}",
              flush=True)
        results.append(asyncio.run(run_session(session, args)))
    baseline = None
    if not args.no_baseline:
        baseline = ts.Baseline()
        for result in results:
            print(f"baseline (engine alone) on {result.session.name}", flush=True)
            asyncio.run(bench_engine(result, args.baseline_every, options, baseline))

    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version()}
    ts.report(results, baseline, args.speed)
    ts.write_json(args.out, results, baseline, machine=machine,
                  params={"speed": args.speed, "baseline_every": args.baseline_every,
                          "budget": options.budget, "max_tokens": options.max_tokens,
                          "sessions": [r.session.name for r in results]})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
