"""`semcore-hf prepare-model`: make a base model SID-ready, so that TRL's own CLI can train it.

    semcore-hf prepare-model --model_name_or_path HuggingFaceTB/SmolLM2-135M-Instruct \
        --output_dir outputs/sid_ready/smollm2-135m-instruct
    trl sft --config recipes/t2i_causal_lm_lora.yaml          # its model_name_or_path is that folder

Adds the SID structure tokens (and, for an atomic-ID index, one token per target) to the tokenizer / processor,
grows the embeddings to match, sets the chat template and saves the `SIDTokenizerExtension` next to them
(`semcore_hf.training.prepare_model_for_sids`). `--push_to_hub` also publishes it, so that
`trl sft --model_name_or_path <user/name>` trains it by Hub id and the adapters record a portable base.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from semcore_hf.cli._args import local_or_hub


@dataclass
class PrepareModelArguments:
    """The flags of `semcore-hf prepare-model` (also the keys of its `--config` YAML)."""

    model_name_or_path: str = field(metadata={"help": "The base model: local folder or Hub id.", "type": local_or_hub})
    output_dir: str = field(metadata={"help": "Where the SID-ready model is written (replaced as a whole)."})
    model_kind: str = field(
        default="auto",
        metadata={
            "help": "causal_lm, image_text_to_text or auto (read from the model config).",
            "choices": ["auto", "causal_lm", "image_text_to_text"],
        },
    )
    chat_template: str = field(
        default="auto",
        metadata={
            "help": "compact (instruction + newline; ~10 prompt tokens instead of an instruct template's ~45), model "
            "(its own) or auto (compact for causal LMs, model for VLMs).",
            "choices": ["auto", "compact", "model"],
        },
    )
    sid_index: str | None = field(
        default=None,
        metadata={
            "help": "The SIDIndex the data was built with: an atomic-ID index adds its one token per target.",
            "type": local_or_hub,
        },
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Also push the SID-ready model to the Hub."})
    hub_model_id: str | None = field(
        default=None, metadata={"help": "The Hub repo to push to (default: the output folder's name)."}
    )
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repo as private."})


def make_parser(prog: str):
    from semcore_hf.cli._parser import CommandParser

    return CommandParser([PrepareModelArguments], prog=prog, description=__doc__.split("\n\n")[0])


def run(args: PrepareModelArguments) -> int:
    import os

    from semcore_hf.data.prompts import PROMPT_FORMAT
    from semcore_hf.tokenization import SIDTokenizerExtension
    from semcore_hf.training import prepare_model_for_sids
    from semcore_hf.training.sft import _identifier_tokens

    tokens = _identifier_tokens(args)
    extension = SIDTokenizerExtension(prompt_format=PROMPT_FORMAT, identifier_tokens=tokens)
    ids = prepare_model_for_sids(
        args.model_name_or_path, args.output_dir, extension, args.model_kind, chat_template=args.chat_template
    )
    print(f"SID-ready model written to {args.output_dir} (new token ids {ids[:3]}{' ...' if len(ids) > 3 else ''})")
    if args.push_to_hub:
        from semcore_hf.hub import push_sid_ready_model

        repo_id = args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))
        push_sid_ready_model(args.output_dir, repo_id, private=args.hub_private_repo)
        print(f"Pushed to the Hub as {repo_id}")
    return 0
