"""The textual form of a SID, defined with the identifiers; the data builder (training completions) and the
tokenizer extension read and write SIDs through it.

A SID string is ``"<global words> | <lexical phrase>, <lexical phrase>"``. In a completion it is wrapped in three
structure tokens, ``<sid>global<sid_sep>lexical</sid>``; since they are added special tokens the tokenizer splits on
them, so the SID's token ids do not depend on the prompt in front of it or on the end-of-turn text after it.
"""

from __future__ import annotations

SID_BEGIN = "<sid>"
SID_SEP = "<sid_sep>"
SID_END = "</sid>"
GLOBAL_LEXICAL_SEPARATOR = " | "
LEXICAL_SEPARATOR = ", "


def split_sid(sid: str) -> tuple[str, list[str]]:
    """Split ``"dog park | brown puppy, red frisbee"`` into ``("dog park", ["brown puppy", "red frisbee"])``."""
    if GLOBAL_LEXICAL_SEPARATOR.strip() not in sid:
        raise ValueError(f"Not a SID (expected 'global words | lexical, phrases'): {sid!r}")
    global_id, lexical = sid.split(GLOBAL_LEXICAL_SEPARATOR.strip(), 1)
    phrases = [p.strip() for p in lexical.split(LEXICAL_SEPARATOR.strip()) if p.strip()]
    return global_id.strip(), phrases


def join_sid(global_id: str, phrases: list[str]) -> str:
    """Inverse of `split_sid`."""
    return f"{global_id}{GLOBAL_LEXICAL_SEPARATOR}{LEXICAL_SEPARATOR.join(phrases)}"


def sid_to_completion(sid: str, begin: str = SID_BEGIN, sep: str = SID_SEP, end: str = SID_END) -> str:
    """The completion text a model is trained to generate for `sid`: ``<sid>dog park<sid_sep>brown puppy</sid>``."""
    global_id, phrases = split_sid(sid)
    return f"{begin}{global_id}{sep}{LEXICAL_SEPARATOR.join(phrases)}{end}"


def completion_to_sid(text: str, begin: str = SID_BEGIN, sep: str = SID_SEP, end: str = SID_END) -> str | None:
    """Parse a generated completion back to a SID string; `None` if the text holds no complete SID."""
    start = text.find(begin)
    if start < 0:
        return None
    body = text[start + len(begin) :]
    stop = body.find(end)
    if stop < 0 or sep not in body[:stop]:
        return None
    global_id, lexical = body[:stop].split(sep, 1)
    phrases = [p.strip() for p in lexical.split(LEXICAL_SEPARATOR.strip()) if p.strip()]
    return join_sid(global_id.strip(), phrases)
