"""Conversation templates, prompt rendering and answer clean-up, as the official code does them.

Mirrors ``minigpt4/conversation/conversation.py`` (``CONV_VISION_Vicuna0``, ``CONV_VISION_LLama2``,
``Chat.ask``/``upload_img``/``answer``) of Vision-CAIR/MiniGPT-4, docs/minigpt4-reference.md sections 7 and 8.
Templates are immutable; nothing here mutates its arguments (unlike the official ``Chat``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.protocol import Turn

IMAGE_PLACEHOLDER = "<ImageHere>"
IMAGE_MESSAGE = "<Img><ImageHere></Img>"
SYSTEM_PROMPT = (
    "Give the following image: <Img>ImageContent</Img>. You will be able to see the image once I "
    "provide it to you. Please answer my questions."
)
# prompts/alignment.txt of the official repository (stage-2 training instructions)
ALIGNMENT_PROMPTS = (
    "<Img><ImageHere></Img> Describe this image in detail.",
    "<Img><ImageHere></Img> Take a look at this image and describe what you notice.",
    "<Img><ImageHere></Img> Please provide a detailed description of the picture.",
    "<Img><ImageHere></Img> Could you describe the contents of this image for me?",
)


@dataclass(frozen=True)
class Template:
    name: str
    sep: str
    user_role: str
    assistant_role: str
    empty_role_suffix: str  # what an empty message renders after the bare role name
    train_instruction: str  # stage-2 training template, "{}" = an alignment prompt
    train_end_symbol: str  # ends each stage-2 training answer (training.config.resolved_end_sym)
    stop_string: str | None  # text that ends an answer (the demo's "###" rule)

    def role(self, speaker: str) -> str:
        return self.user_role if speaker == "user" else self.assistant_role


TEMPLATES = {
    # current code: roles carry their own trailing space, so the prompt ends "###Assistant: "
    "vicuna0": Template("vicuna0", "###", "Human: ", "Assistant: ", "",
                        "###Human: {} ###Assistant: ", "###", "###"),
    # April 2023 (the code the Vicuna checkpoints were demoed with): role + ": " + message,
    # an empty message renders "Assistant:" with no trailing space.
    "vicuna0_april2023": Template("vicuna0_april2023", "###", "Human: ", "Assistant: ", "STRIP",
                                  "###Human: {} ###Assistant: ", "###", "###"),
    # MiniGPT-4's Llama-2 prompt: not Meta's chat format (no <<SYS>>, no </s> after answers)
    "llama2": Template("llama2", "", "<s>[INST] ", " [/INST] ", "",
                       "[INST] {} [/INST] ", "</s>", "###"),
}


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown conversation template {name!r}; known: {sorted(TEMPLATES)}") from None


def _sanitize(text: str) -> str:
    # A literal placeholder in user text would desynchronise images and segments.
    return text.replace(IMAGE_PLACEHOLDER, "<Image Here>")


def with_context(question: str, context: str) -> str:
    """Append grounding text (e.g. OCR of the screen) as a clearly separated part of the question."""
    context = _sanitize(context).replace("###", "#").strip()
    if not context:
        return question
    return f"{question}\nText found on the screen by OCR (may contain errors):\n\"\"\"\n{context}\n\"\"\""


def messages_for(history: Sequence[Turn], question: str, new_image_count: int) -> list[tuple[str, str]]:
    """The official message list: one user message per uploaded image, the question joined with a
    space to a preceding image message (``Chat.ask``), and an empty assistant message at the end."""
    messages: list[tuple[str, str]] = []

    def add_user(text: str, image_count: int) -> None:
        messages.extend(("user", IMAGE_MESSAGE) for _ in range(image_count))
        text = _sanitize(text)
        if messages and messages[-1][0] == "user" and messages[-1][1].endswith("</Img>"):
            messages[-1] = ("user", " ".join([messages[-1][1], text]))
        else:
            messages.append(("user", text))

    for turn in history:
        if turn.role == "user":
            add_user(turn.text, len(turn.image_ids))
        else:
            messages.append(("assistant", turn.text))
    add_user(question, new_image_count)
    messages.append(("assistant", ""))
    return messages


def render(template: Template, messages: Sequence[tuple[str, str]]) -> str:
    """``Conversation.get_prompt`` (SeparatorStyle.SINGLE): system + sep, then role+message+sep."""
    out = SYSTEM_PROMPT + template.sep
    for speaker, message in messages:
        role = template.role(speaker)
        if message:
            out += role + message + template.sep
        elif template.empty_role_suffix == "STRIP":
            out += role.rstrip()
        else:
            out += role
    return out


def build_prompt(template: Template, history: Sequence[Turn], question: str, new_image_count: int) -> str:
    return render(template, messages_for(history, question, new_image_count))


def split_on_images(prompt: str, image_count: int) -> list[str]:
    segments = prompt.split(IMAGE_PLACEHOLDER)
    if len(segments) != image_count + 1:
        raise ValueError(f"prompt has {len(segments) - 1} image placeholders but {image_count} images")
    return segments


def clean_answer(text: str) -> str:
    """Official post-processing: cut at the first '###', keep what follows the last 'Assistant:', strip."""
    return text.split("###")[0].split("Assistant:")[-1].strip()
