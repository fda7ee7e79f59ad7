"""Moved to `semcore_hf.identifiers.sid_format` (the SID string format lives with the identifiers); re-exported here
so that existing imports keep working."""

from semcore_hf.identifiers.sid_format import (  # noqa: F401
    GLOBAL_LEXICAL_SEPARATOR,
    LEXICAL_SEPARATOR,
    SID_BEGIN,
    SID_END,
    SID_SEP,
    completion_to_sid,
    join_sid,
    sid_to_completion,
    split_sid,
)
