"""Task instructions shared by the training data (data step) and the retriever / verifier at inference.

One model can serve both directions: the instruction selects the task. Training and inference must use the very
same text, so both import it from here.

Prompts are conversational (TRL "prompt-completion" format): a list with one user message whose content is a list of
parts, ``{"type": "image"}`` and ``{"type": "text", "text": ...}``. Text-only models get the same message with the
parts' text joined (see `to_text_only`).
"""

from __future__ import annotations

from semcore_hf.identifiers.captioning import CAPTION_PROMPT
from semcore_hf.modeling.inputs import to_text_only  # noqa: F401  (re-exported: the prompt helpers' users need it)

TASKS = ("t2i", "i2t", "memorize_t2i", "memorize_i2t", "verify_t2i", "verify_i2t", "caption", "pseudo_t2i")

# Short on purpose: every token of boilerplate is paid in every training row and every query (the instruction only has
# to tell the tasks apart). Bump PROMPT_FORMAT when any text here changes: models record the format they were trained
# with, and inference refuses a mismatch instead of silently feeding other token ids.
PROMPT_FORMAT = 2
T2I_INSTRUCTION = "Find the image: {query}"
I2T_INSTRUCTION = "Find a caption for this image."
MEMORIZE_IMAGE_INSTRUCTION = "Name this image."
MEMORIZE_TEXT_INSTRUCTION = "Name the image described as: {text}"
MEMORIZE_CAPTION_INSTRUCTION = "Name the caption: {text}"
# Verification prompts put the query before the candidate, so the prefix a query's candidates share (its text, or
# its image for I2T) is encoded once for all of them (GSVScorer(share_prefix=True)).
VERIFY_T2I_INSTRUCTION = 'Does this image match "{query}"? yes or no'
VERIFY_T2I_TEXT_INSTRUCTION = 'Query: "{query}". Does an image described as "{candidate}" match it? yes or no'
VERIFY_I2T_INSTRUCTION = 'Does "{candidate}" describe this image? yes or no'
# image -> its human caption: aligns a VLM before SIDs are built from its captions
CAPTION_INSTRUCTION = CAPTION_PROMPT
YES, NO = "yes", "no"


def user_message(text: str, with_image: bool = False) -> list[dict]:
    """A one-turn conversational prompt: ``[{"role": "user", "content": [image?, text]}]``."""
    content: list[dict] = [{"type": "image"}] if with_image else []
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def t2i_prompt(query: str) -> list[dict]:
    """Text query -> image SID (any causal LM or VLM)."""
    return user_message(T2I_INSTRUCTION.format(query=query))


def i2t_prompt() -> list[dict]:
    """Image query -> caption SID (VLM); the image goes in the `images` column / processor call."""
    return user_message(I2T_INSTRUCTION, with_image=True)


def memorize_image_prompt() -> list[dict]:
    """Image -> its own SID (memorisation, VLM); the image goes in the `images` column."""
    return user_message(MEMORIZE_IMAGE_INSTRUCTION, with_image=True)


def memorize_text_prompt(text: str) -> list[dict]:
    """Generated description of an image -> the image's SID (memorisation for text-only models)."""
    return user_message(MEMORIZE_TEXT_INSTRUCTION.format(text=text))


def memorize_caption_prompt(text: str) -> list[dict]:
    """Caption -> its own SID (I2T memorisation)."""
    return user_message(MEMORIZE_CAPTION_INSTRUCTION.format(text=text))


def verify_t2i_prompt(query: str) -> list[dict]:
    """GSV for T2I with a VLM: does the candidate image (in `images`) match the text query?"""
    return user_message(VERIFY_T2I_INSTRUCTION.format(query=query), with_image=True)


def verify_t2i_text_prompt(query: str, candidate: str) -> list[dict]:
    """GSV for T2I with a text-only model: the candidate image is given by its (generated) description."""
    return user_message(VERIFY_T2I_TEXT_INSTRUCTION.format(query=query, candidate=candidate))


def verify_i2t_prompt(candidate: str) -> list[dict]:
    """GSV for I2T: does the candidate caption describe the image (in `images`)?"""
    return user_message(VERIFY_I2T_INSTRUCTION.format(candidate=candidate), with_image=True)


def caption_prompt() -> list[dict]:
    """Image -> its caption (the `caption` task: a VLM's alignment stage, before it captions images for SIDs)."""
    return user_message(CAPTION_INSTRUCTION, with_image=True)


def assistant_message(text: str) -> list[dict]:
    """A one-turn conversational completion: ``[{"role": "assistant", "content": text}]``."""
    return [{"role": "assistant", "content": text}]
