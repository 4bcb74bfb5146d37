"""Data-parallel generation with the in-process engine, for several GPUs and no model server.

A launcher (``accelerate launch``, or ``torchrun`` which it starts underneath) starts one process per device; each
runs ``cltr codegen generate`` as usual, generates its own disjoint share of the run's missing samples and appends
them to ONE stored run::

    accelerate launch --multi_gpu --num_processes 8 -m cltrlib codegen generate --model llama-2-7b-hf --dataset jhumaneval
    torchrun --standalone --nproc_per_node 2 -m cltrlib codegen generate --model gemma3-270m --limit 8   # 2 CPU processes

Why it is the one-process run: every process computes the store key a one-process run has (``batch_size`` and
``device`` are not in it, the engine's texts do not depend on which other prompts share a decode group, and each
sample has its own seed), so the stored run is readable by ``run_generation`` and the notebooks, and a later
launch with another number of processes (or one process) resumes it.

How the share is cut: the missing samples are ordered by prompt length (ties by problem order) and process ``r`` of
``w`` takes every ``w``-th from position ``r``, so each gets as many long prompts as short ones (decode groups stay
balanced, nobody waits on the longest shard) and the split is a pure function of what is stored.

Synchronisation: the processes form a gloo group (``torch.distributed``, CPU or GPU alike: it only carries
barriers; accelerate's ``PartialState`` saw one process on CPU under torchrun, so the group is set up here
explicitly from ``WORLD_SIZE`` / ``RANK`` / ``MASTER_ADDR``). Process 0 holds the run's lock throughout (a
concurrent one-process run waits); all read which samples are stored, wait until every one has read, then each
appends its finished batches (``RunStore.append`` writes whole batches under an exclusive file lock); after the
last barrier process 0 checks that nothing is missing and marks the run complete. A process killed mid-run ends
the launch (the launcher stops the others); what was appended stays, and the next launch generates only the rest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

from cltrlib.codegen.run import (
    GenerationConfig,
    GenerationRun,
    check_config,
    finish_run,
    generate_samples,
    generation_store,
    make_provider,
    missing_samples,
    resolve_prompt_mode,
)
from cltrlib.data import Problem

# A barrier waits while the other processes generate their share: hours on a large model, not gloo's 30 min default.
BARRIER_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class World:
    """This process's place in a launch: ``rank`` of ``size``, ``local_rank`` on its machine (picks its GPU)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> World:
        """What torchrun / ``accelerate launch`` put in the environment (one process when nothing is there)."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        return cls(rank=rank, size=size, local_rank=int(os.environ.get("LOCAL_RANK", str(rank))))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process is one of several started by a launcher (``WORLD_SIZE`` > 1)."""
    return World.from_env().size > 1


@contextlib.contextmanager
def process_group(world: World) -> Iterator[None]:
    """A gloo process group for the launch's barriers (none for one process; an existing group is reused)."""
    import torch.distributed as dist

    if world.size <= 1 or dist.is_initialized():
        yield
        return
    dist.init_process_group("gloo", rank=world.rank, world_size=world.size, timeout=BARRIER_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()


def shard(todo: list[tuple[Problem, int]], world: World) -> list[tuple[Problem, int]]:
    """This process's share of ``todo``: every ``world.size``-th after ordering by prompt length (see the module
    docstring); the shares of all ranks are disjoint and together are ``todo``."""
    order = sorted(range(len(todo)), key=lambda i: (len(todo[i][0].prompt), i))
    return [todo[i] for i in sorted(order[world.rank::world.size])]


def default_device(world: World) -> str:
    """This process's device: its own GPU (``cuda:LOCAL_RANK``) where there are GPUs, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return f"cuda:{world.local_rank % torch.cuda.device_count()}"
    return "cpu"


def run_generation_parallel(cfg: GenerationConfig, progress: bool = True, world: World | None = None,
                            provider=None) -> GenerationRun:
    """``run_generation`` split across the processes of a launch (one process: the same as it); returns the run
    in every process, complete once all of them return."""
    if cfg.provider != "hf":
        raise ValueError("data-parallel generation is for the in-process engine (--provider hf); a server "
                         "(vLLM, SGLang) parallelises itself: run one client against it")
    check_config(cfg)
    world = world or World.from_env()
    with process_group(world):
        if provider is None:
            provider = make_provider(replace(cfg, device=cfg.device or default_device(world)))
        mode = resolve_prompt_mode(cfg, provider)
        run = GenerationRun(cfg, mode, generation_store(cfg, mode, provider.identity()))
        with run.store.lock() if world.is_main else contextlib.nullcontext():
            barrier(world)  # process 0 holds the run's lock
            if run.store.is_complete():
                barrier(world)  # nobody leaves (and process 0 unlocks) before every process has looked
                return run
            todo = missing_samples(run)
            barrier(world)  # every process has read the store before any appends to it
            generate_samples(run, provider, shard(todo, world), progress=progress and world.is_main)
            barrier(world)  # every share is stored
            if world.is_main:
                finish_run(run, provider, todo)
            barrier(world)  # the run is marked complete before any process returns it
    return run
