"""The engine process: one target, one scheduler, msgpack-RPC on a Unix socket or TCP.

A Unix socket is private (mode 0600, owner only). TCP is for a shared engine and is never
open: it needs $SPARKEDIT_ENGINE_TOKEN, and a TCP client must send `hello {token}` before
any other request. Logs go to stderr; stdout stays empty.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.request import ContextOverflowError, GenerateParams
from engine.rpc import Connection, EngineError, Request, RpcServer, parse_address
from engine.scheduler import Job, Scheduler
from engine.targets.base import Target

log = logging.getLogger("sparkedit.engine")

TOKEN_ENV = "SPARKEDIT_ENGINE_TOKEN"
PROTOCOL_VERSION = 1


class EngineStartError(Exception):
    """The engine cannot start; the message says why (exit code 1)."""


# ---------------------------------------------------------------------------- methods


@dataclass
class EngineService:
    """The RPC methods; each handler validates its params and answers, nothing more."""

    target: Target
    scheduler: Scheduler
    token: str | None  # set only for TCP, where every connection must say `hello` first

    def handlers(self) -> dict[str, Any]:
        return {"hello": self.hello, "generate": self.generate, "cancel": self.cancel,
                "tokenize": self.tokenize, "info": self.info, "health": self.health,
                "score": self.score, "prefill": self.prefill}

    def authorize(self, conn: Connection, request: Request) -> bool:
        return self.token is None or conn.authenticated or request.method == "hello"

    async def hello(self, conn: Connection, request: Request) -> dict[str, Any]:
        if self.token is not None:
            given = request.params.get("token")
            if not isinstance(given, str) or not hmac.compare_digest(
                    given.encode(), self.token.encode()):
                # Answer, then hang up: one guess per connection.
                asyncio.get_running_loop().call_later(0.05, conn.writer.close)
                raise EngineError("unauthorized", "wrong engine token")
        conn.authenticated = True
        return {"ok": True, "protocol": PROTOCOL_VERSION}

    async def generate(self, conn: Connection, request: Request) -> dict[str, Any]:
        info = self.target.info()
        try:
            params = GenerateParams.from_wire(request.params, vocab_size=info.get("vocab_size"),
                                              context_limit=info.get("context_limit"))
        except ContextOverflowError as exc:  # a ValueError too, but the client can recover
            raise EngineError("context_overflow", str(exc)) from exc
        except ValueError as exc:
            raise EngineError("invalid_params", str(exc)) from exc
        on_text = None
        if params.stream:
            loop = asyncio.get_running_loop()
            msgid = request.id

            def on_text(text: str, tokens: list[int]) -> None:
                # Worker thread: hand the frame to the loop, which writes frames in order.
                # No backpressure: a job's notifications are bounded by its max_tokens.
                loop.call_soon_threadsafe(conn.notify_nowait, "token", {
                    "id": msgid, "text": text, "tokens": [int(t) for t in tokens]})

        return await self._await(self.scheduler.submit((conn.id, request.id), params, on_text,
                                                       group=params.document))

    async def score(self, conn: Connection, request: Request) -> dict[str, Any]:
        from engine.scoring import tokens_from_wire

        info = self.target.info()
        try:
            tokens = tokens_from_wire(request.params.get("tokens"),
                                      vocab_size=int(info["vocab_size"]),
                                      context_limit=int(info["context_limit"]))
        except ContextOverflowError as exc:
            raise EngineError("context_overflow", str(exc)) from exc
        except ValueError as exc:
            raise EngineError("invalid_params", str(exc)) from exc

        def work(should_stop: Callable[[], bool]) -> dict[str, Any]:
            logprobs = self.target.score(tokens, should_stop)
            # Only a cancelled job (client gone, or `cancel`) stops short.
            return {"logprobs": logprobs, "cancelled": len(logprobs) < len(tokens)}

        # Through the worker: the target's model is never used by two threads at once.
        return await self._await(self.scheduler.submit((conn.id, request.id), tokens, None,
                                                       work=work))

    async def prefill(self, conn: Connection, request: Request) -> dict[str, Any]:
        """Warm the prefix cache with a prompt ahead of the requests that will share it.
        Background work: it yields to every other request and resumes after them; a newer
        prefill for the same `document` replaces it. Answers when the prompt is cached
        (`complete`), or when it was cancelled or replaced."""
        info = self.target.info()
        params = dict(request.params) if isinstance(request.params, dict) else request.params
        try:
            parsed = GenerateParams.from_wire(params, vocab_size=info.get("vocab_size"),
                                              context_limit=info.get("context_limit"))
        except ContextOverflowError as exc:
            raise EngineError("context_overflow", str(exc)) from exc
        except ValueError as exc:
            raise EngineError("invalid_params", str(exc)) from exc
        group = None if parsed.document is None else f"{parsed.document}#prefill"

        def work(should_stop: Callable[[], bool]) -> dict[str, Any]:
            return self.target.prefill(parsed, should_stop)

        return await self._await(self.scheduler.submit((conn.id, request.id), parsed, None,
                                                       group=group, work=work, low=True))

    async def _await(self, job: Job) -> dict[str, Any]:
        try:
            return await job.future
        except asyncio.CancelledError:
            # The connection went away under us: free the worker for the others.
            self.scheduler.cancel(job)
            raise

    async def cancel(self, conn: Connection, request: Request) -> dict[str, Any]:
        job_id = request.params.get("id")
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise EngineError("invalid_params", "cancel needs {id: <generate request id>}")
        job = self.scheduler.find((conn.id, job_id))
        return {"cancelled": job is not None and self.scheduler.cancel(job)}

    async def tokenize(self, conn: Connection, request: Request) -> dict[str, Any]:
        text = request.params.get("text")
        offsets = request.params.get("offsets", False)
        if not isinstance(text, str):
            raise EngineError("invalid_params", "tokenize needs {text: str}")
        if not isinstance(offsets, bool):
            raise EngineError("invalid_params", "offsets must be a boolean")
        # Off the loop: a long file takes tens of milliseconds to tokenize.
        return await asyncio.get_running_loop().run_in_executor(
            None, self.target.tokenize, text, offsets)

    async def info(self, conn: Connection, request: Request) -> dict[str, Any]:
        return self.target.info()

    async def health(self, conn: Connection, request: Request) -> dict[str, Any]:
        return {"ok": True, "queue_length": self.scheduler.queue_length,
                "running": self.scheduler.running}


# ---------------------------------------------------------------------------- sockets


def _engine_answers(path: str) -> bool:
    """Is something listening on this socket file? (a stale file refuses the connection)"""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except PermissionError:
        return True  # someone else's socket: never remove it
    except OSError:
        return False
    finally:
        probe.close()
    return True


def unsafe_socket_folder(folder: str) -> str | None:
    """Why a socket in `folder` would not be the user's alone, or None. Refused: a folder
    another user owns (root's aside), and one that group or others can write without the
    sticky bit, where they could replace the socket with their own and read what the
    editor sends."""
    st = os.stat(folder)
    if st.st_uid not in (os.getuid(), 0):
        return f"the socket folder {folder} belongs to another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        return (f"the socket folder {folder} can be written by others (mode "
                f"{stat.S_IMODE(st.st_mode):o}): they could replace the socket; use a "
                "private folder")
    return None


def bind_unix_socket(path: str) -> tuple[socket.socket, int]:
    """Bind a private (0600) Unix socket at `path`, replacing only a stale socket file.
    Returns the socket and the file's inode, so shutdown removes only its own file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise EngineStartError(f"{path} exists and is not a socket")
        if _engine_answers(path):
            raise EngineStartError(f"another engine is already serving on {path}")
        os.unlink(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o700, exist_ok=True)
    if (problem := unsafe_socket_folder(parent)) is not None:
        raise EngineStartError(problem)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask closes the window between bind and chmod in which others could connect.
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)  # fails if another engine bound it since the check: no clobbering
    except OSError as exc:
        sock.close()
        raise EngineStartError(f"cannot bind {path}: {exc}") from exc
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return sock, os.stat(path).st_ino


def _remove_own_socket(path: str, inode: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == inode:
            os.unlink(path)


# ---------------------------------------------------------------------------- process


def load_target(args: argparse.Namespace) -> Target:
    if args.target in ("cerebras", "openai"):
        # For a remote target --model is the remote model id; the local tokenizer (for
        # `tokenize`, `info` and reading token prompts) is the embedded model's by default.
        if args.target == "cerebras":
            from engine.targets.cerebras import CerebrasTarget as Remote
        else:
            from engine.targets.openai import OpenAITarget as Remote  # type: ignore[assignment]
        return Remote.from_settings(base_url=args.base_url, model=args.model,
                                    tokenizer_dir=getattr(args, "tokenizer", None))
    if args.target != "wafer-sim":
        raise NotImplementedError(f"target {args.target!r} is not implemented yet")
    from engine.backend_choice import ModelSpec
    from engine.targets.wafer_sim import DEFAULT_PROFILE, WaferSimTarget

    model = args.model
    if model is None:
        from engine.models import default_model_dir

        model = default_model_dir()
    spec = ModelSpec(path=Path(model).expanduser(), backend=getattr(args, "backend", "auto"),
                     quant=getattr(args, "quant", None), threads=getattr(args, "threads", None))
    return WaferSimTarget(spec, profile=getattr(args, "profile", None) or DEFAULT_PROFILE,
                          pace=bool(getattr(args, "pace", False)))


PARENT_POLL_S = 1.0


async def _exit_with_parent(parent_pid: int, stopping: asyncio.Event) -> None:
    """Stop once `parent_pid` is no longer our parent: a language server killed outright
    (SIGKILL, a crash) cannot stop its engine, which would otherwise live on as an orphan."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_POLL_S)
    log.info("the process that started the engine (%d) is gone; shutting down", parent_pid)
    stopping.set()


async def serve(target: Target, args: argparse.Namespace, token: str | None) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    scheduler = Scheduler(target, loop)
    service = EngineService(target, scheduler, token)
    rpc = RpcServer(service.handlers(), authorize=service.authorize,
                    on_disconnect=lambda conn: scheduler.cancel_owner(conn.id))
    own_socket: tuple[str, int] | None = None
    if args.socket:
        sock, inode = bind_unix_socket(args.socket)
        own_socket = (args.socket, inode)
        try:
            server = await asyncio.start_unix_server(rpc.handle_connection, sock=sock)
        except OSError:
            _remove_own_socket(args.socket, inode)
            raise
        where = args.socket
    else:
        _, (host, port) = parse_address("tcp:" + args.tcp.removeprefix("tcp:"))
        server = await asyncio.start_server(rpc.handle_connection, host, port)
        bound = server.sockets[0].getsockname()
        where = f"tcp:{bound[0]}:{bound[1]}"
    scheduler.start()
    log.info("engine ready on %s (target %s, pid %d)", where, target.name, os.getpid())
    watch = None
    if getattr(args, "parent_pid", None):
        watch = asyncio.create_task(_exit_with_parent(args.parent_pid, stopping))
    try:
        await stopping.wait()
        log.info("shutting down")
    finally:
        if watch is not None:
            watch.cancel()
        server.close()
        for conn in list(rpc.connections):
            conn.writer.close()
        scheduler.stop()
        await loop.run_in_executor(None, scheduler.join)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2.0)
        if own_socket is not None:
            _remove_own_socket(*own_socket)
    return 0


def run_engine(args: argparse.Namespace) -> int:
    """`sparkedit engine`: serve until SIGTERM/SIGINT. Exit 0 after a clean shutdown, 2 for
    bad arguments, 1 for a failure explained on stderr."""
    level = logging.getLevelName(str(args.log_level).upper())
    if not isinstance(level, int):
        print(f"sparkedit engine: unknown --log-level {args.log_level!r}", file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(asctime)s sparkedit-engine %(levelname)s %(message)s")
    token: str | None = None
    if args.tcp:
        token = os.environ.get(TOKEN_ENV) or None
        if token is None:
            print(f"sparkedit engine: --tcp needs a token in ${TOKEN_ENV}; clients send it "
                  "in `hello`", file=sys.stderr)
            return 2
        try:
            parse_address("tcp:" + args.tcp.removeprefix("tcp:"))
        except ValueError as exc:
            print(f"sparkedit engine: {exc}", file=sys.stderr)
            return 2
    elif args.socket and os.path.exists(args.socket) and _engine_answers(args.socket):
        # Fail before the model loads when another engine already owns the socket.
        print(f"sparkedit engine: another engine is already serving on {args.socket}",
              file=sys.stderr)
        return 1
    from engine.backend_choice import ModelLoadError
    from engine.targets.remote_config import RemoteConfigError

    profile = getattr(args, "profile", None)
    if profile is not None:
        from engine.targets.model_config import preset_names

        if profile not in preset_names():
            print(f"sparkedit engine: unknown --profile {profile!r} (profiles: "
                  f"{', '.join(preset_names())})", file=sys.stderr)
            return 2
    try:
        target = load_target(args)
    except (NotImplementedError, RemoteConfigError) as exc:  # RemoteConfigError: no key, bad URL
        print(f"sparkedit engine: {exc}", file=sys.stderr)
        return 2
    except (ModelLoadError, OSError, ValueError) as exc:
        print(f"sparkedit engine: cannot load the model: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(serve(target, args, token))
    except EngineStartError as exc:
        print(f"sparkedit engine: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"sparkedit engine: cannot listen: {exc}", file=sys.stderr)
        return 1
