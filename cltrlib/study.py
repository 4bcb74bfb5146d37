"""The study configuration: one ``Study`` per profile, one frozen dataclass per stage.

Read this file to know what a profile runs. Each stage's field defaults are the papers' own settings (Paper A
for code eval, Paper B for transfer, Paper C for embeddings), so the ``paper`` profile is almost all defaults;
every other profile lists only where it differs, and a comment says why (CPU time, usually).

- ``smoke``  a handful of items on both embedded models: checks that every path runs (``make test``)
- ``local``  the study at embedded-model scale on 2 CPU cores (``make reproduce``); the one profile whose outputs
  are committed (``figures/``); every other profile writes under ``<results>/figures/<profile>/``
- ``paper``  the papers' hub models and settings, for a GPU machine with hub access
- ``rehearsal``  the ``paper`` profile's models and settings on tiny random-weight stand-ins of the same
  architectures and tokenizers (``cltrlib.standins``, built offline), on tiny data: every code path the papers'
  models take runs in CI; the numbers mean nothing

A notebook's parameters cell resolves its knobs through here, ``None`` meaning "the profile's value"::

    s = study(profile).transfer.override(models=models, seeds=seeds)

and the CLI and the explorer panels read the same objects. A new stage is a new dataclass and a field of
``Study``; a new profile is one entry of ``PROFILES``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import Any, Self

from cltrlib import config
from cltrlib.models import EMBEDDED, GEMMA3, PAPER_MODELS, SMOLLM2


def _paper_models(*tables: str, api: bool = False) -> tuple[str, ...]:
    """The registry's models of these paper tables, in registry order: the local (hub) models, or with ``api`` the
    ones served only through an API (Paper A's GPT-4 and GPT-3.5 rows)."""
    return tuple(m.name for m in PAPER_MODELS.values()
                 if set(tables) & set(m.paper_tables) and m.hub_id.startswith("openai:") == api)


class Stage:
    """Shared by every stage's settings: ``override`` applies a notebook's (or the CLI's) knobs."""

    def override(self, **params: Any) -> Self:
        """These settings with every non-None parameter replaced; an unknown name is an error that lists the valid ones.

        Lists become tuples so a resolved stage stays immutable (and hashable where its fields are).
        """
        names = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        unknown = sorted(set(params) - names)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(map(repr, unknown))}; "
                            f"valid: {', '.join(sorted(names))}")
        given = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if v is not None}
        return replace(self, **given)  # type: ignore[type-var]


@dataclass(frozen=True)
class JHumanEvalSettings(Stage):
    """Notebook 01: build JHumanEval from the translation memory and validate it (the full pipeline in every
    profile: 164 tasks build in seconds). Network translators (DeepL, OpenAI, HF) are CLI-only."""

    backend: str = "memory"
    run_solutions: bool = True  # run each canonical solution in the sandbox during validation
    workers: int | None = None  # sandbox workers (None: one per core)
    timeout: float = 10.0
    # Notebook 08 (translation quality and the Lp experiment). Paper A: DeepL, then GPT-4 repairing terminology
    # against the code, then a full hand review (``cltr jhumaneval build --backend deepl`` / ``--repair-model``);
    # its translators are paid APIs, so the paper profile names them and builds nothing with an embedded model.
    mt_backend: str = "deepl"
    mt_repair_model: str = "gpt-4-0613"
    mt_models: tuple[str, ...] = ()  # embedded models that translate through llama.cpp's server (committed builds)
    repair_rounds: int = 2  # validator-driven re-translation rounds before the deterministic post-edits
    soft_models: tuple[str, ...] = ()  # models whose log-likelihood measure is computed on every build
    soft_limits: tuple[tuple[str, int], ...] = ()  # (model, first N problems): a soft model scored on fewer problems
    pass1_runs: tuple[tuple[str, str], ...] = ()  # (model, prompt mode) whose pass@1 is measured on the builds
    pass1_builds: tuple[str, ...] | None = None  # which MT builds get pass@1 ("MT", "MT+repair"); None: every one
    experiment_limit: int | None = None  # first N problems of the experiment (None: all 164)

    def __post_init__(self) -> None:
        # A limit for a model that is not in soft_models is ignored (choosing other models keeps the profile's limits).
        for entry in self.soft_limits:
            if len(entry) != 2 or not isinstance(entry[0], str) or not isinstance(entry[1], int) or entry[1] < 1:
                raise ValueError(f"JHumanEvalSettings.soft_limits: {entry!r} is not a (model, N >= 1) pair; "
                                 "write e.g. [('gemma3-270m', 82)]")


@dataclass(frozen=True)
class ExtraRun:
    """A generation run beside the grid, e.g. a model in its non-default prompt mode on the first problems, or one
    model on a further data set (``datasets``; None: the stage's data sets)."""

    model: str
    prompt_mode: str
    limit: int | None = None
    datasets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CodeEvalSettings(Stage):
    """Notebooks 02 (pass@k) and 03 (CLTR). Paper A: Table 1-2 models, greedy pass@1, both data sets."""

    models: tuple[str, ...] = _paper_models("A1", "A2")
    datasets: tuple[str, ...] = ("humaneval", "jhumaneval")
    prompt_modes: tuple[str, ...] = ("default",)  # "default" = the registry's mode per model; or chat / completion
    n: int = 1  # samples per problem
    temperature: float = 0.0
    limit: int | None = None  # first N problems
    max_new_tokens: int = 512
    batch_size: int = 32  # bounds a decode group (the engine's KV budget splits it further)
    timeout: float = 10.0  # seconds per program: the floor under the canonical-derived limits
    extra_runs: tuple[ExtraRun, ...] = ()
    soft_gap_models: tuple[str, ...] | None = None  # models whose gap gets the log-likelihood measure (None: all)
    cltr_pairs: tuple[tuple[str, str], ...] = tuple(
        (m.base, m.name) for m in PAPER_MODELS.values() if m.base and "A2" in m.paper_tables)
    # Table 1's API models, generated through the OpenAI provider (cltrlib.providers.openai) when OPENAI_API_KEY is
    # set (OPENAI_BASE_URL: another compatible endpoint), skipped with a message otherwise (codegen.pipeline).
    api_models: tuple[str, ...] = _paper_models("A1", "A2", api=True)

    def override(self, **params: Any) -> Self:
        """As ``Stage.override``; a string ``prompt_modes`` is one mode, and choosing models or prompt modes drops
        the profile's extra runs and API models (they belong to the profile's own model list)."""
        if isinstance(params.get("prompt_modes"), str):
            params["prompt_modes"] = (params["prompt_modes"],)
        if params.get("cltr_pairs") is not None:
            params["cltr_pairs"] = tuple(tuple(p) for p in params["cltr_pairs"])
        out = super().override(**params)
        if params.get("models") or params.get("prompt_modes"):
            out = replace(out, extra_runs=(), api_models=params.get("api_models") or ())
        return out

    def generation_configs(self) -> list:
        """One ``GenerationConfig`` per (model, prompt mode, data set), the API models' through the OpenAI provider
        (``provider="openai"``), then the extra runs per data set."""
        from cltrlib.codegen.run import GenerationConfig, api_model_of

        common = {"n": self.n, "temperature": self.temperature, "max_new_tokens": self.max_new_tokens,
                  "batch_size": self.batch_size}
        configs = [GenerationConfig(model=model, dataset=ds, prompt_mode="auto" if mode == "default" else mode,
                                    limit=self.limit, provider="openai" if api_model_of(model) else "hf", **common)
                   for model in (*self.models, *self.api_models) for mode in self.prompt_modes
                   for ds in self.datasets]
        configs += [GenerationConfig(model=x.model, dataset=ds, prompt_mode=x.prompt_mode, limit=x.limit, **common)
                    for x in self.extra_runs for ds in (x.datasets or self.datasets)]
        return configs


@dataclass(frozen=True)
class TransferSettings(Stage):
    """Notebook 04, Paper B: 1024 English rows + 0/16/104 Japanese, 512 Japanese test rows, 10 epochs, 3 seeds;
    LoRA for the LLMs (all layers), full fine-tuning for the BERTs; LIME attributions for ELYZA."""

    models: tuple[str, ...] = _paper_models("B3")
    dataset: str = "sib200-science"  # SIB-200 science vs rest stands in for the proprietary ESG headlines
    patterns: dict[str, int] = field(default_factory=lambda: {"ja0": 0, "ja16": 16, "ja104": 104})
    conditions: tuple[str, ...] = ("crosslingual", "monolingual")
    seeds: tuple[int, ...] = (0, 1, 2)
    n_source: int | None = 1024  # capped at the data set's English training rows (701 for SIB-200)
    n_test: int | None = 512
    epochs: int = 10
    batch_size: int = 16
    max_length: int | None = None  # a cap on input tokens; None: fitted per model to the data's longest text
    lora_layers: int | None = None  # LoRA on the top k layers only (None: all layers)
    lr: float | None = None  # None: 5e-4 for LoRA, 5e-5 for full fine-tuning
    train_balance: str = "balanced"  # training rows 1:1 by label as Paper B; "natural": the corpus's label rates
    # Runs beside the grid with LoRA on every layer (q, v), for a grid whose lora_layers makes it a probe: these
    # models, the cross-lingual condition, these patterns and seeds (None: the grid's seeds).
    full_depth_models: tuple[str, ...] = ()
    full_depth_patterns: tuple[str, ...] = ("ja0", "ja104")
    full_depth_seeds: tuple[int, ...] | None = None
    full_depth_epochs: int | None = None  # None: the grid's epochs
    # bf16 autocast for the full-depth runs (None: on GPU and on CPUs with bf16 matrix instructions, where it about
    # doubles the speed; False: fp32 like the grid). The probe grid always runs in fp32.
    full_depth_bf16: bool | None = False
    attribution_model: str | None = _paper_models("B5")[0]
    attribution_texts: int = 64
    attribution_samples: int = 64
    attribution_seed: int = 0


@dataclass(frozen=True)
class EmbeddingSettings(Stage):
    """Notebooks 05 (zero-shot generalisation) and 06 (embedding similarity), Paper C: LLaMA-7B, LoRA r8/a32,
    lr 2e-5, 6 epochs on the full English training sets, full test sets, every pair of each corpus."""

    models: tuple[str, ...] = _paper_models("C1")  # LLaMA-7B is not in the registry; Llama-2-7B stands in
    tasks: tuple[str, ...] = ("sib200", "pawsx")
    n_train: int | None = None  # English training examples (None: all)
    epochs: float = 6.0
    lr: float = 2e-5
    batch_size: int = 16
    # Token lengths: None = fitted from the data per model over every language (cltrlib.lengths.fit_max_length:
    # nothing truncated in any language, so en-X comparisons see whole translations); an int forces that length.
    # The caps bound a fitted length (memory); a binding cap truncates the languages with the most tokens first.
    prompt_max_length: int | None = None
    prompt_length_cap: int | None = None
    n_test: int | None = None  # test items per language per task (None: all)
    similarity_corpora: tuple[str, ...] = ("pawsx", "pud", "sib200")
    after_corpora: tuple[str, ...] = ("pawsx", "pud", "sib200")  # corpora also embedded with the tuned adapter
    after_task: str = "pawsx"  # which adapter gives the "after fine-tuning" embeddings
    n_pairs: dict[str, int | None] = field(default_factory=dict)  # pairs per corpus (missing: all)
    embed_max_length: int | None = None
    embed_length_cap: int | None = None
    embed_batch_size: int = 32
    seed: int = 0
    device: str | None = None


@dataclass(frozen=True)
class ExplorerSettings(Stage):
    """Notebook 00's three teaching panels: code eval (one problem, live generation), embeddings, classification."""

    code_model: str = SMOLLM2
    task_id: str = "HumanEval/2"
    language: str = "ja"
    max_new_tokens: int = 512  # a chat reply that re-states the function needs ~150-300 tokens
    timeout: float = 10.0
    embedding_model: str = SMOLLM2
    corpus: str = "pud"
    n_baseline: int = 200  # random pairs for the panel's baseline
    n_pick: int = 40  # sentences offered in the picker
    embed_max_length: int = 64
    lime_samples: int = 256
    classify_text: str = "科学者たちは新しい種類の化石を発見した。"
    prefer_model: str | None = None  # the classifier shown first (None: the one trained on most Japanese rows)


@dataclass(frozen=True)
class PretrainSettings(Stage):
    """Notebook 07 (issue 18): continual pre-training of a base model per condition (Review D, Swallow's recipe,
    plus the English control Paper A lacked), then our own Paper A Table 2 keyed (base, condition).

    Defaults are the ``paper`` profile: Llama-2-7B (Paper A's base), full fine-tuning, Swallow's peak learning rate
    1e-4 with cosine decay, on the Debian manual pages. The manual pages bound the budget: the English control needs
    as many English tokens as the Japanese condition gets, and the English originals hold about 1.6 M Llama-2 tokens,
    so the budget is 1.5 M tokens (92 steps of 8 GPUs x 1 x 2048); a folder of your own text (``source``) lifts it.
    Run it on many GPUs with ``accelerate launch --config_file configs/accelerate_fsdp_8gpu.yaml -m
    cltrlib.pretrain.launch --profile paper`` (documented and rehearsed on stand-ins; never run on GPUs here).
    """

    models: tuple[str, ...] = ("llama-2-7b-hf",)
    conditions: tuple[str, ...] = ("ja", "en", "ja+en", "ja+parallel", "ja+vocab")  # cltrlib.pretrain.conditions
    source: str = "manpages"  # manpages | mirror | a folder with ja/ and en/ sub-folders
    tokens: int = 1_507_328  # training tokens per condition (whole steps of 8 x 1 x 2048)
    seq_len: int = 2048
    batch_size: int = 1  # blocks per optimizer step per process
    grad_accum: int = 1
    lr: float = 1e-4
    scheduler: str = "cosine"
    warmup: float = 0.05
    method: str = "full"  # full | lora (merged into every checkpoint)
    lora_r: int = 64
    lora_alpha: int = 128
    lora_layers: int | None = None  # LoRA on the top k decoder layers only (None: all)
    base_dtype: str = "float32"  # LoRA's frozen base weights: float32 | bfloat16 (PretrainConfig.base_dtype)
    chunked_loss: bool = False  # the LM-head loss a chunk of positions at a time (cltrlib.pretrain.loss; not FSDP)
    # ja+vocab: Swallow grew Llama-2's 32,000 tokens to 43,176 with Japanese ones; learnt here from the Japanese
    # training documents by BPE (of vocab_bpe_size pieces), keeping the most frequent wholly kana/kanji pieces
    vocab_new_tokens: int = 11_176
    vocab_bpe_size: int = 32_000
    checkpoints: int = 4  # evaluation checkpoints along each run (the last is the final model)
    bf16: bool | None = None  # autocast; None: on GPU, and on CPUs with bf16 matrix instructions
    allow_contaminated: bool = False  # train on a corpus that shares 13-grams with evaluation data
    ppl_blocks: int = 64  # held-out blocks per language for perplexity
    soft_limit: int | None = None  # problems for the soft (log-likelihood) EN/JA measure (None: all 164)
    soft_every_checkpoint: bool = True  # False: the soft measure on the base and the final models only
    pass1_conditions: tuple[str, ...] | None = None  # conditions whose final model gets pass@1 (None: all)
    pass1_limit: int | None = None  # first N problems for pass@1 (base and after models alike)
    max_new_tokens: int = 512  # pass@1 generation, as notebook 02
    gen_batch_size: int = 32
    timeout: float = 10.0
    accelerate_config: str = "configs/accelerate_fsdp_8gpu.yaml"  # for users with GPUs (not used in-process)
    seed: int = 0

    def train_config(self, model: str, condition: str):
        """The ``PretrainConfig`` of one (model, condition) run (what decides its weights and store key)."""
        from cltrlib.pretrain.train import PretrainConfig

        return PretrainConfig(model=model, condition=condition, tokens=self.tokens, seq_len=self.seq_len,
                              batch_size=self.batch_size, grad_accum=self.grad_accum, lr=self.lr,
                              scheduler=self.scheduler, warmup=self.warmup, method=self.method, lora_r=self.lora_r,
                              lora_alpha=self.lora_alpha, lora_layers=self.lora_layers, base_dtype=self.base_dtype,
                              checkpoints=self.checkpoints, seed=self.seed)


@dataclass(frozen=True)
class Study:
    """Every stage's settings for one profile."""

    name: str
    purpose: str
    jhumaneval: JHumanEvalSettings = JHumanEvalSettings()
    codeeval: CodeEvalSettings = CodeEvalSettings()
    transfer: TransferSettings = TransferSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    explorer: ExplorerSettings = ExplorerSettings()
    pretrain: PretrainSettings = PretrainSettings()

    @property
    def figures_dir(self):
        """Where this profile's figures and tables go (only the committed profile writes ``figures/``)."""
        return config.figures_dir(self.name)


PROFILES: dict[str, Study] = {
    "paper": Study("paper", "the papers' hub models and settings (a GPU with hub access)"),
    "local": Study(
        "local", "the study at embedded-model scale on 2 CPU cores; its outputs are the committed ones",
        # Notebook 08: Gemma-3-270M (multilingual base model) translates through llama.cpp's server; the builds are
        # committed (data/builds), so make reproduce reads them instead of translating. The soft measure for both
        # models, Gemma's on the first 82 problems: one Gemma scoring of all 164 takes ~2 min on 2 quiet threads
        # (117 s English, 122 s published; SmolLM2's English and published runs are notebook 03's, Gemma's are not),
        # four of them would add ~8 min to make reproduce's 80; the four 82-problem runs took 217 s in notebook 08
        # (benchmarks/translation_pass1.py --measure soft scores all 164: benchmarks/RESULTS.md). pass@1 for SmolLM2
        # (chat) on the repaired build only (Paper A's pipeline is MT + repair): each generation run costs ~5-7 min,
        # a Gemma run ~10 min (Gemma's pass@1 on both builds: benchmarks/translation_pass1.py).
        jhumaneval=JHumanEvalSettings(mt_backend="llama.cpp", mt_repair_model="", mt_models=(GEMMA3,),
                                      soft_models=(SMOLLM2, GEMMA3), soft_limits=((GEMMA3, 82),),
                                      pass1_runs=((SMOLLM2, "chat"),), pass1_builds=("MT+repair",)),
        codeeval=CodeEvalSettings(
            # Each model in its relevant mode: SmolLM2-Instruct chats, Gemma-3-270M (a base model) completes.
            # All 164 problems, both languages, greedy; one decode group per run (the KV budget splits it).
            models=EMBEDDED, max_new_tokens=256, batch_size=164, cltr_pairs=(),
            api_models=(),  # no paid API calls from `make reproduce`, key or not
            # The measured failure of an instruct model in completion mode (0/40 as 0/20; 20 save ~1.6 min).
            # The repaired JHumanEval (notebook 01; the published HumanEval/64 prompt does not parse) for SmolLM2's
            # chat runs only: the EN-JA gap on a defect-free set without a second 164-problem Gemma run (~10 min).
            extra_runs=(ExtraRun(SMOLLM2, "completion", limit=20),
                        ExtraRun(SMOLLM2, "chat", datasets=("jhumaneval-rebuilt",))),
            # The soft (log-likelihood) gap for SmolLM2 only: Gemma's 262k-word head makes its scoring the slow part.
            soft_gap_models=(SMOLLM2,)),
        # Paper B's epochs, conditions, patterns and seeds; fewer rows, LoRA on the top layer only over cached
        # lower-layer states (a probe; whole texts, lengths fitted per model). Beside it, Paper B's full-depth LoRA
        # (q/v on every layer) for Gemma-3 at ja0 and ja104, to check the probe's ja0 vs ja104 conclusion: Gemma
        # only (its texts fit in 80 tokens, SmolLM2's need 244: one SmolLM2 step of 16 took 39 s, ~1.5 h per ja104
        # seed), one seed (its interval over test items is its uncertainty), bf16 autocast where the CPU has bf16
        # units (fp32 elsewhere, about twice the time), and 3 epochs instead of 10: what fitted this session's CPU
        # time (benchmarks/transfer_full_depth_cost.py sizes it; make reproduce's budget allows ~8-10 min for it).
        transfer=TransferSettings(models=EMBEDDED, n_source=128, n_test=100, lora_layers=1,
                                  full_depth_models=(GEMMA3,), full_depth_patterns=("ja0", "ja104"),
                                  full_depth_seeds=(0,), full_depth_epochs=3, full_depth_bf16=None,
                                  attribution_model=GEMMA3, attribution_texts=12, attribution_samples=48),
        # Both tasks, both models, all three corpora before and after tuning, sized for 2 CPU cores (32 test items,
        # 40 pairs per corpus). Lengths are fitted from the data (no language truncated); length-sorted batches keep
        # the cost of the long Japanese/Chinese sentences to their own batches.
        embeddings=EmbeddingSettings(models=EMBEDDED, after_task="sib200", n_train=64, epochs=1.0, lr=3e-3,
                                     batch_size=8, n_test=32, n_pairs={"pawsx": 40, "pud": 40, "sib200": 40},
                                     embed_batch_size=16),
        explorer=ExplorerSettings(max_new_tokens=320, n_baseline=48, lime_samples=64, prefer_model=GEMMA3),
        # SmolLM2 only: the English-centric model the question is about. Gemma-3 trains at 106 tokens/s on this path
        # (152 with base_dtype="bfloat16" + chunked_loss: 3.2x its plain loop at a better held-out loss) against
        # SmolLM2's 254, and a 164-problem Gemma generation run takes ~10 min against SmolLM2's 5-7: no room in the
        # budget. LoRA with bf16 autocast where the CPU has bf16 units (1.9x the plain fp32 loop's tokens/s at an
        # equal held-out loss, 2 quiet threads; base_dtype="bfloat16" + chunked_loss reach 2.15x at equal loss but
        # change the store key for ~16 s saved; the faster variants lose 0.03-0.06 nats: benchmarks/RESULTS.md),
        # 6 steps of 4 x 512 tokens per condition. Evaluation costs more than training here (one 135M forward of a
        # ~500-token chat prompt is 1-2 s on one core), so: perplexity on 4 held-out blocks per language at every
        # checkpoint, the soft measure on 24 problems for the base and the final models, pass@1 on the first 8
        # problems for the base and the ja / en final models (the replay condition gets the soft measure and
        # perplexity only). Notebook 07: 666 s in a quiet make reproduce (2026-12-03).
        pretrain=PretrainSettings(models=(SMOLLM2,), conditions=("ja", "en", "ja+en"), tokens=12_288, seq_len=512,
                                  batch_size=4, lr=1e-3, method="lora", checkpoints=2, ppl_blocks=4, soft_limit=24,
                                  soft_every_checkpoint=False, pass1_conditions=("ja", "en"), pass1_limit=8,
                                  max_new_tokens=256, gen_batch_size=8),
    ),
    "smoke": Study(
        "smoke", "a handful of items: checks that every path runs; the numbers mean nothing",
        # workers=2: shares the CI machine politely. Notebook 08 reads the committed Gemma build (no translation)
        # and scores 3 problems.
        jhumaneval=JHumanEvalSettings(workers=2, mt_models=(GEMMA3,), soft_models=(SMOLLM2,), experiment_limit=3),
        codeeval=CodeEvalSettings(models=EMBEDDED, limit=3, max_new_tokens=96, batch_size=4, cltr_pairs=(),
                                  api_models=()),  # no network in CI
        transfer=TransferSettings(models=EMBEDDED, patterns={"ja0": 0, "ja4": 4}, conditions=("crosslingual",),
                                  seeds=(0,), n_source=16, n_test=8, epochs=1, max_length=24, lora_layers=1,
                                  attribution_model=GEMMA3, attribution_texts=2, attribution_samples=6),
        embeddings=EmbeddingSettings(models=EMBEDDED, n_train=2, epochs=1.0, lr=1e-3, batch_size=2,
                                     prompt_max_length=48, n_test=1, similarity_corpora=("pawsx",),
                                     after_corpora=("pawsx",), n_pairs={"pawsx": 3}, embed_max_length=24,
                                     embed_batch_size=16),
        # SmolLM2's 49k-token vocabulary loads and runs several times faster than Gemma's 262k.
        explorer=ExplorerSettings(max_new_tokens=32, n_baseline=8, n_pick=12, embed_max_length=48, lime_samples=8,
                                  prefer_model=SMOLLM2),
        # Two steps of 2 x 64 tokens per condition on the mirror's SIB-200 text (no groff rendering), LoRA; the
        # soft measure and pass@1 on 3 problems (pass@1's base runs are notebook 02's smoke runs: same key).
        pretrain=PretrainSettings(models=(SMOLLM2,), conditions=("ja", "en"), source="mirror", tokens=256,
                                  seq_len=64, batch_size=2, lr=1e-3, method="lora", lora_r=8, lora_alpha=16,
                                  checkpoints=1, ppl_blocks=2, soft_limit=3, pass1_conditions=("ja",), pass1_limit=3,
                                  max_new_tokens=96, gen_batch_size=4),
    ),
}


PROFILES["rehearsal"] = Study(
    "rehearsal", "the paper profile's models and settings on tiny stand-ins of their architectures (offline, CI)",
    # Paper settings everywhere; only the amount of data is cut. Random weights write garbage until the token cap,
    # so the full 512-token cap runs every decoding step a real model could take.
    jhumaneval=JHumanEvalSettings(workers=2),
    # The API models have no stand-in (their provider is tested against llama.cpp's server: test_providers_server).
    codeeval=CodeEvalSettings(limit=3, api_models=()),
    transfer=TransferSettings(n_source=32, n_test=16, attribution_texts=2, attribution_samples=8),
    embeddings=EmbeddingSettings(n_train=16, n_test=2, n_pairs={"pawsx": 4, "pud": 4, "sib200": 4}),
    # The explorer's panels on the Llama-family stand-ins (their tokenizer is the one with the decoding pitfalls).
    explorer=ExplorerSettings(code_model="codellama-7b-instruct-hf", max_new_tokens=48,
                              embedding_model="llama-2-7b-hf", n_baseline=8, n_pick=12, lime_samples=8),
    # Llama-2's stand-in, full fine-tuning, every paper condition; the mirror's text (the stand-in's tokenizer is
    # Llama-2's, so the held-out share of SIB-200 holds a few 256-token blocks, not one of 2048), 2 steps. ja+vocab
    # learns from SIB-200's ~40k Japanese characters, which hold a few hundred new pieces, not Swallow's 11k.
    pretrain=PretrainSettings(source="mirror", tokens=512, seq_len=256, checkpoints=2, ppl_blocks=2, soft_limit=3,
                              pass1_conditions=("ja", "en"), pass1_limit=3, vocab_new_tokens=256,
                              vocab_bpe_size=4000),
)
STANDIN_PROFILES = frozenset({"rehearsal"})  # profiles whose hub ids resolve to the tiny stand-ins


def study(profile: str) -> Study:
    """The ``Study`` of a profile; also makes it the one whose output folder figures and tables go to, and turns
    the tiny stand-ins on for the rehearsal profile (off for every other)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    from cltrlib.standins import standins_enabled, use_standins

    config.set_output_profile(profile)
    if standins_enabled() != (profile in STANDIN_PROFILES):
        use_standins(profile in STANDIN_PROFILES)
    return PROFILES[profile]
