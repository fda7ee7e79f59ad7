"""`semcore-hf push-to-hub`: publish a trained model or LoRA adapter with its tokenizer, SID index and card.

    semcore-hf push-to-hub --model_dir outputs/t2i_lora --repo_id user/semcore-t2i --index outputs/sids/t2i_index
    semcore-hf retrieve --model user/semcore-t2i --query "a dog on the grass"

For folders `trl sft` wrote as well as `semcore-hf train`'s: the adapter's base is recorded as a Hub id (see
`semcore_hf.hub.push_trained_model`), the index goes to `sid_index/` and `README.md` becomes the semcore_hf model card
(TRL's `--push_to_hub` would publish its generic card and the training machine's base path instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from semcore_hf.cli._args import existing_dir, local_or_hub


@dataclass
class PushToHubArguments:
    """The flags of `semcore-hf push-to-hub` (also the keys of its `--config` YAML)."""

    model_dir: str = field(metadata={"help": "The trained model or adapter folder.", "type": existing_dir})
    repo_id: str = field(metadata={"help": "The Hub model repo (user/name); created if missing."})
    index: str | None = field(
        default=None,
        metadata={"help": "SIDIndex of the targets (default: the folder's own sid_index/).", "type": local_or_hub},
    )
    base_model: str | None = field(
        default=None,
        metadata={
            "help": "Adapters: the Hub id to record as base (default: the SID-ready base's origin, when the adapter "
            "stores the new tokens' rows)."
        },
    )
    private: bool | None = field(default=None, metadata={"help": "Create the repo as private."})
    revision: str | None = field(default=None, metadata={"help": "The branch to push to."})
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing."})
    commit_message: str = field(default="Upload SemCORE retriever", metadata={"help": "The commit message."})


def make_parser(prog: str):
    from semcore_hf.cli._parser import CommandParser

    return CommandParser([PushToHubArguments], prog=prog, description=__doc__.split("\n\n")[0])


def run(args: PushToHubArguments) -> int:
    from semcore_hf.hub import push_trained_model

    commit = push_trained_model(
        args.model_dir,
        args.repo_id,
        index=args.index,
        base_model=args.base_model,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        create_pr=args.create_pr,
    )
    print(f"Pushed {args.model_dir} to {args.repo_id}: {getattr(commit, 'commit_url', commit)}")
    return 0
