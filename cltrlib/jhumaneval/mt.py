"""JHumanEval machine-translated by an embedded model through llama.cpp's server: the raw build and the repaired one,
committed under ``data/builds`` with a sidecar JSON recording how each was made.

Why committed: translation is the one step of notebook 01 that costs minutes of CPU, and the builds are our own
artefact (not a mirror copy). ``ensure_mt_builds`` reads a committed build when its sidecar's configuration (the
translator's identity: served model, GGUF sha256, prompt hash, repair rounds, builder version) matches the one asked
for and the file's sha256 matches the sidecar's, and translates (with the cache, so a resumed build pays only for
what is missing) only when it does not, e.g. after a prompt change.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from cltrlib import config
from cltrlib.jhumaneval.backends import SHOT_TASKS, ServedModelTranslator, _provider
from cltrlib.jhumaneval.cache import TranslationCache
from cltrlib.jhumaneval.http import DEFAULT_POLICY
from cltrlib.jhumaneval.repair import REPAIR_VERSION

BUILDER_VERSION = "1"  # bump when segmentation, repair or post-edits change what a build contains
BUILDS_DIR = config.REPO_ROOT / "data" / "builds"


def build_paths(model: str, builds_dir: Path | None = None) -> dict[str, Path]:
    """The raw and the repaired build of ``model`` (JSONL; the sidecar is ``<path>.json``)."""
    d = Path(builds_dir) if builds_dir is not None else BUILDS_DIR
    return {"mt": d / f"jhumaneval-{model}-mt.jsonl", "mt_repaired": d / f"jhumaneval-{model}-mt-repaired.jsonl"}


def offline_translator(model: str, mode: str | None = None) -> ServedModelTranslator:
    """The translator a llama.cpp server of ``model`` would give, without starting one: the name (cache key and
    sidecar identity) depends on the served model, its GGUF sha256 and the prompt, never on the port."""
    from cltrlib.models import SMOLLM2
    from cltrlib.providers.llamacpp import NEUTRAL_SAMPLING, gguf_path, gguf_sha256

    provider = _provider("http://127.0.0.1/v1", model, None, DEFAULT_POLICY,
                         f"gguf-sha256:{gguf_sha256(gguf_path(model))}", dict(NEUTRAL_SAMPLING))
    return ServedModelTranslator(provider, mode or ("chat" if model == SMOLLM2 else "completion"))


def build_config(model: str, repair_rounds: int | None, mode: str | None = None) -> dict:
    tr = offline_translator(model, mode)
    return {"backend": "llama.cpp server (llama-cpp-python)", "model": model, "translator": tr.name,
            "mode": tr.mode, "prompt_id": tr.prompt_id, "shot_tasks": list(SHOT_TASKS) if tr.mode == "completion"
            else [], "repair_rounds": repair_rounds, "builder_version": BUILDER_VERSION,
            **({"repair_version": REPAIR_VERSION} if repair_rounds is not None else {})}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def matching_build(path: Path, cfg: dict) -> dict | None:
    """The sidecar of ``path`` when it was made with ``cfg`` and the file is unchanged since, else None."""
    side = Path(f"{path}.json")
    if not path.is_file() or not side.is_file():
        return None
    meta = json.loads(side.read_text())
    if meta.get("config") != cfg or meta.get("sha256") != _sha256(path):
        return None
    return meta


def ensure_mt_builds(model: str, repair_rounds: int = 2, builds_dir: Path | None = None, threads: int = 1,
                     cache: TranslationCache | None = None, force: bool = False, progress: bool = True) -> dict:
    """Both builds of ``model`` (raw, repaired): read when committed with this configuration, else made through a
    llama.cpp server (one thread). Returns {kind: {"path", "meta", "built": bool, "wall_s"}}."""
    paths = build_paths(model, builds_dir)
    cfgs = {"mt": build_config(model, None), "mt_repaired": build_config(model, repair_rounds)}
    out: dict[str, dict] = {}
    for kind, path in paths.items():
        meta = None if force else matching_build(path, cfgs[kind])
        if meta is not None:
            out[kind] = {"path": path, "meta": meta, "built": False, "wall_s": 0.0}
    todo = [k for k in paths if k not in out]
    if not todo:
        return out
    from cltrlib.jhumaneval.build import build_jhumaneval
    from cltrlib.providers.llamacpp import LlamaCppServer

    cache = cache if cache is not None else TranslationCache()
    with LlamaCppServer(model, threads=threads, n_ctx=2048) as srv:
        tr = ServedModelTranslator.for_server(srv)
        assert tr.name == cfgs["mt"]["translator"], (tr.name, cfgs["mt"]["translator"])
        for kind in todo:
            t0 = time.monotonic()
            before, usage0 = tr.n_requests, dict(tr.usage)
            rep = build_jhumaneval(tr, paths[kind], cache=cache, progress=progress,
                                   repair_rounds=cfgs[kind]["repair_rounds"])
            wall = time.monotonic() - t0
            used = {k: v - usage0.get(k, 0) for k, v in tr.usage.items()}
            meta = {"config": cfgs[kind], "sha256": _sha256(paths[kind]), "n_tasks": rep.n_tasks,
                    "n_text_segments": rep.n_text_segments, "n_parse_ok": rep.n_parse_ok, "repair": rep.repair,
                    "cost": {"requests": tr.n_requests - before, "wall_s": round(wall, 1), **used,
                             "note": "this run only (segments already in the cache cost nothing); "
                                     f"{threads} llama.cpp thread(s)"}}
            Path(f"{paths[kind]}.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
            out[kind] = {"path": paths[kind], "meta": meta, "built": True, "wall_s": wall}
    return out
