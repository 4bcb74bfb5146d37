"""llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``, from ``llama-cpp-python[server]``, which
``make env`` builds once into the wheel cache) on the embedded models' own GGUF files.

``LlamaCppServer`` starts it on a free loopback port, waits until it answers, and stops it; its ``options()`` are
the ``GenerationConfig`` fields that send a run there. The served model's revision is the GGUF file's sha256, so
a run through the server is keyed by the exact quantised weights it ran (they differ from the engine's: the HF
folder is the same GGUF dequantised to fp32).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from cltrlib import config
from cltrlib.providers import ProviderError

# llama.cpp's server samples with a repeat penalty of 1.1 by default: off, so greedy is plain argmax as in our
# engine and in the papers' setting.
NEUTRAL_SAMPLING = {"repeat_penalty": 1.0}


def gguf_path(model: str | Path) -> Path:
    """The GGUF file of an embedded model (Gemma's is assembled from its PyPI parts once), or a given file."""
    from cltrlib.models import EMBEDDED_MODELS, _gguf_source

    if str(model) in EMBEDDED_MODELS:
        return _gguf_source(str(model))
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"{model}: neither an embedded model ({', '.join(EMBEDDED_MODELS)}) nor a GGUF file")
    return path


def gguf_sha256(path: Path) -> str:
    """The file's sha256, cached beside it (keyed by size and mtime): hashing 100-300 MB costs a second."""
    st = path.stat()
    side = config.cache_dir() / "gguf" / f"{path.name}.{st.st_size}.{int(st.st_mtime)}.sha256"
    if side.is_file():
        return side.read_text().strip()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    side.parent.mkdir(parents=True, exist_ok=True)
    side.write_text(h.hexdigest())
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    """``python -m llama_cpp.server`` on loopback serving one GGUF (an embedded model's name or a file).

    ``threads`` bounds its CPU use (1 here: the machine's other core runs the rest); ``n_ctx`` must hold the longest
    prompt plus the token cap. Use as a context manager, or ``start()`` / ``stop()``; ``kill()`` ends it at once
    (SIGKILL), as a crash would.
    """

    def __init__(self, model: str | Path, port: int | None = None, n_ctx: int = 2048, threads: int = 1,
                 alias: str | None = None, log: Path | None = None, ready_timeout: float = 180.0):
        self.model = str(model)
        self.path = gguf_path(model)
        self.alias = alias or (self.model if self.path != Path(self.model) else self.path.stem)
        self.port, self.n_ctx, self.threads = port, n_ctx, threads
        self.log = log or (config.cache_dir() / "logs" / f"llama-server-{self.alias}.log")
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def revision(self) -> str:
        return f"gguf-sha256:{gguf_sha256(self.path)}"

    def options(self) -> dict:
        """``GenerationConfig`` fields for a run through this server."""
        return {"provider": "openai", "base_url": self.base_url, "api_model": self.alias, "revision": self.revision,
                "extra_body": tuple(sorted(NEUTRAL_SAMPLING.items()))}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.path), "--model_alias", self.alias,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]

    def start(self) -> LlamaCppServer:
        if self.proc is not None and self.proc.poll() is None:
            return self
        if self.port is None:
            self.port = free_port()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise ProviderError(f"llama.cpp server for {self.path.name} exited with {self.proc.returncode} "
                                    f"before it was ready (log {self.log}):\n{tail}")
            try:
                if requests.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise ProviderError(f"llama.cpp server for {self.path.name} not ready after {self.ready_timeout:.0f} s "
                            f"(log {self.log})")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """End the server at once (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
