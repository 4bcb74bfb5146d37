"""Train a profile's continual pre-training runs from the command line, in one process or under a launcher.

Why a module of its own: ``accelerate launch`` / ``torchrun`` start one process per device, each running the same
program; the Trainer inside ``run_pretraining`` then shards the batches (DDP) or the weights (FSDP, DeepSpeed)
across them. Notebook 07 runs the same stage in-process and reads these runs back from the results store (they
are keyed by the configuration, which includes the per-process batch size but not the number of processes).

    # 8 GPUs, FSDP (configs/accelerate_fsdp_8gpu.yaml), then notebook 07 on the paper profile evaluates
    accelerate launch --config_file configs/accelerate_fsdp_8gpu.yaml -m cltrlib.pretrain.launch --profile paper
    # the rehearsals on CPU, 2 processes, gloo: DDP (tests/test_pretrain_distributed.py) and the 8-GPU config's
    # FSDP2 settings (tests/test_pretrain_fsdp.py; FSDP1 needs GPUs)
    torchrun --standalone --nproc_per_node 2 -m cltrlib.pretrain.launch --profile rehearsal --conditions ja
    accelerate launch --config_file configs/accelerate_fsdp2_cpu_rehearsal.yaml -m cltrlib.pretrain.launch \
        --profile rehearsal --conditions ja --tokens 2048 --batch-size 1 --bf16 off
"""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    from cltrlib.pretrain.pipeline import train_condition
    from cltrlib.study import study

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--conditions", nargs="+", default=None)
    ap.add_argument("--tokens", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None, help="blocks per step per process")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                    help="bf16 autocast (auto: the profile's setting; off: fp32, for exact comparisons)")
    args = ap.parse_args(argv)
    s = study(args.profile).pretrain.override(models=args.models, conditions=args.conditions, tokens=args.tokens,
                                              batch_size=args.batch_size,
                                              bf16={"auto": None, "on": True, "off": False}[args.bf16])
    rank0 = int(os.environ.get("RANK", "0")) == 0
    for model in s.models:
        for c in s.conditions:
            cr = train_condition(model, c, s, progress=rank0)
            if rank0:
                print(f"[pretrain] {model} / {c}: {cr.run.store.path} (final loss "
                      f"{cr.run.summary().get('final_loss')})", flush=True)


if __name__ == "__main__":
    main()
