"""Replay a typing session through a real language server, as an editor would.

`run_session` starts the server command over stdio, driven by a pygls `LanguageClient`:
- initialize with `root` as root and workspace folder (the server indexes it, reporting
  work-done progress), open the session's document at `root / header.path`, wait for the
  index, then ask once for a completion at the cursor: that first answer is the cold start
  (engine spawn, model load);
- replay the keystrokes at their recorded times (divided by `speed`): each one is an
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
- at the end, compare the server's copy of the document (`sparkedit/documentText`) with the
  expected text and read the server's own counters from `sparkedit/status` (`stats`).
Problems that do not stop the replay are reported on stderr.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.lsp.client import LanguageClient

from lsp_server.sessions import (
    ClientCounts,
    Session,
    SessionResult,
    Step,
    typed_states,
    utf16_offset,
    utf16_position,
)

INLINE = types.TEXT_DOCUMENT_INLINE_COMPLETION
STATUS = "sparkedit/status"
MIN_ACCEPT = 3  # characters of ghost text worth a Tab
LAST_ANSWER_WAIT_S = 10.0
INITIALIZE_TIMEOUT_S = 60.0  # a server that died before answering never answers
LOG_TAIL = 4000  # characters of the server's stderr kept


@dataclass
class Ghost:
    """The ghost text on screen: what is left of it at the cursor, and its item's id."""

    id: Any
    text: str


def plain(value: Any) -> Any:
    """JSON-like data from a pygls answer, which turns JSON objects into namedtuples."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def item_id(item: Any) -> Any:
    """The suggestion id the server puts in an inline item's accept command, or None."""
    arguments = item.command.arguments if item.command is not None else None
    return plain(arguments[0]) if arguments else None


class Replay:
    """One session's keystrokes, sent to a started and initialized client."""

    def __init__(self, client: LanguageClient, session: Session, uri: str,
                 speed: float, id_prefix: str = "replay") -> None:
        self.client, self.session, self.uri, self.speed = client, session, uri, speed
        self.id_prefix = id_prefix  # request ids must stay unique across replays on a client
        self.text, self.cursor = session.header.text, session.header.cursor
        self.version = 1
        self.counts = ClientCounts()
        self.steps: list[Step] = []
        self.ghost: Ghost | None = None
        self.latest = 0
        self.pending: tuple[str, asyncio.Task] | None = None
        self.started = time.perf_counter()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.client.protocol.notify(method, params)  # unknown to a server: logged, ignored

    def position(self, offset: int) -> types.Position:
        line, character = utf16_position(self.text, offset)
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
        self.steps.append(Step(at_s=time.perf_counter() - self.started, start=start,
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
        msg_id = f"{self.id_prefix}-{self.latest}"
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
            self.show(Ghost(id=item_id(items[0]), text=text))

    def visible(self, item: types.InlineCompletionItem) -> str | None:
        """The ghost text an editor shows at the cursor for `item`, or None."""
        insert = item.insert_text
        insert = insert if isinstance(insert, str) else insert.value
        if item.range is None:
            return insert
        start = utf16_offset(self.text, item.range.start.line, item.range.start.character)
        end = utf16_offset(self.text, item.range.end.line, item.range.end.character)
        typed = self.text[start:end]
        if end != self.cursor or not insert.startswith(typed):
            self.counts.unrenderable += 1
            return None
        return insert[len(typed):]

    def show(self, ghost: Ghost) -> None:
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
        clean = typed_states(self.session)
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


def tail(chunks: list[bytes]) -> str:
    """The last LOG_TAIL characters of a log, from a line's start."""
    text = b"".join(chunks).decode(errors="replace")
    return text if len(text) <= LOG_TAIL else text[text.find("\n", -LOG_TAIL) + 1:]


async def run_session(session: Session, *, root: Path, speed: float, server_command: list[str],
                      server_log_level: str = "WARNING", index_timeout: float = 60,
                      initialization_options: dict | None = None) -> SessionResult:
    """Replay `session` against a fresh `server_command` (run in `root`, given `--log-level
    server_log_level`). `initialization_options` go over `{"statsFile": "off"}`, which keeps
    the user's lifetime statistics clean. On an exception, the tail of the server's stderr
    goes to stderr before it propagates."""
    uri = (root / session.header.path).as_uri()
    client = LanguageClient("sparkedit-replay", "0")
    created, indexed = asyncio.Event(), asyncio.Event()
    notices: list[str] = []

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def on_create(_client: LanguageClient, params: types.WorkDoneProgressCreateParams) -> None:
        created.set()

    @client.feature(types.PROGRESS)
    def on_progress(_client: LanguageClient, params: types.ProgressParams) -> None:
        if isinstance(value := plain(params.value), dict) and value.get("kind") == "end":
            indexed.set()

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(_client: LanguageClient, params: types.ShowMessageParams) -> None:
        notices.append(params.message)

    for method in (types.WINDOW_LOG_MESSAGE, STATUS):  # read at the end, not as they come
        client.feature(method)(lambda _client, params: None)

    await client.start_io(*server_command, "--log-level", server_log_level, cwd=str(root))
    stderr: list[bytes] = []
    drainer = asyncio.create_task(drain(client._server.stderr, stderr))
    options = {"statsFile": "off", **(initialization_options or {})}
    try:
        result = await drive(client, session, root, uri, options, speed, index_timeout,
                             (created, indexed), notices)
    except Exception:
        sys.stderr.write(tail(stderr))
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
    result.server_log = tail(stderr)
    return result


async def drive(client: LanguageClient, session: Session, root: Path, uri: str,
                options: dict[str, Any], speed: float, index_timeout: float,
                progress: tuple[asyncio.Event, asyncio.Event],
                notices: list[str]) -> SessionResult:
    header = session.header
    created, indexed = progress
    await asyncio.wait_for(client.initialize_async(types.InitializeParams(
        process_id=os.getpid(), root_uri=root.as_uri(), initialization_options=options,
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        capabilities=types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities())))),
        INITIALIZE_TIMEOUT_S)
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
        await asyncio.wait_for(indexed.wait(), index_timeout)
        index_ms = (time.perf_counter() - started) * 1000
    except TimeoutError:
        print("  no index progress from the server; typing without waiting", file=sys.stderr)

    async def ask(method: str, params: Any, timeout_s: float) -> Any:
        try:
            return plain(await asyncio.wait_for(
                client.protocol.send_request_async(method, params), timeout_s))
        except (JsonRpcException, TimeoutError) as exc:
            print(f"  {method} failed: {exc!r}", file=sys.stderr)
            return None

    replay = Replay(client, session, uri, speed)
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
    return SessionResult(session=session, counts=replay.counts,
                         stats=stats if isinstance(stats, dict) else None, status=status,
                         cold_ms=cold_ms, index_ms=index_ms, duration_s=duration_s,
                         steps=replay.steps, notices=notices, in_sync=in_sync)
