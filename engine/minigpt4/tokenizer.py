"""The LLaMA SentencePiece tokenizer with the segment rule that produced every official prompt.

transformers 4.30's slow ``LlamaTokenizer`` split text on the special-token strings (``<s>``,
``</s>``, ``<unk>``), turned each into its id, and gave every other piece to SentencePiece on its
own, so each piece got the dummy-prefix ``▁`` (docs/minigpt4-reference.md section 6.2). transformers 5's default
tokenizer does not do this after a literal ``<s>``; calling SentencePiece directly is the safest
way to be exact on every version.
"""

from __future__ import annotations

import re
from pathlib import Path

import sentencepiece as spm

PAD_TOKEN = "$$"  # current official code: an ordinary vocabulary piece used as padding (id 3997 in LLaMA)
_SPECIAL = ("<s>", "</s>", "<unk>")
_SPLIT = re.compile("(" + "|".join(re.escape(s) for s in _SPECIAL) + ")")


class Tokenizer:
    def __init__(self, model_file: Path | str) -> None:
        self.model_file = Path(model_file)
        self._sp = spm.SentencePieceProcessor(model_file=str(self.model_file))
        self.unk_id = self._sp.unk_id()
        self.bos_id = self._sp.bos_id()
        self.eos_id = self._sp.eos_id()
        # The tokenizer sets pad_token = "$$" (a plain piece). April code padded with </s>.
        self.pad_id = self._piece_id(PAD_TOKEN, fallback=self.eos_id)
        # "$$" is registered as the pad token, so decoding with special tokens skipped drops it too
        self._special_ids = {self.unk_id, self.bos_id, self.eos_id, self.pad_id}
        self._special_by_text = {"<s>": self.bos_id, "</s>": self.eos_id, "<unk>": self.unk_id}

    def _piece_id(self, piece: str, fallback: int) -> int:
        pid = self._sp.piece_to_id(piece)
        return fallback if pid == self.unk_id else pid

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        ids = [self.bos_id] if add_bos else []
        for part in _SPLIT.split(text):
            if not part:
                continue
            special = self._special_by_text.get(part)
            ids.extend([special] if special is not None else self._sp.encode(part))
        return ids

    def decode(self, ids: list[int], skip_special: bool = True) -> str:
        """Decode as transformers 4.30's slow ``LlamaTokenizer`` did. The official answer path skips the
        special tokens (``<s>``, ``</s>``, ``<unk>`` and the ``$$`` pad). Kept, each is written out as its
        piece; the runs between them are decoded by SentencePiece on their own, and reaching a special token
        that neither opens the text nor follows another one writes a space before the run that precedes it
        (``convert_tokens_to_string``: ``'<s> exec</s>'``)."""
        if skip_special:
            return self._sp.decode([i for i in ids if i not in self._special_ids])
        out, run, after_special = "", [], False
        for i, token_id in enumerate(ids):
            if token_id in self._special_ids:
                if not after_special and i != 0:
                    out += " "
                out += self._sp.decode(run) + self._sp.id_to_piece(token_id)
                run, after_special = [], True
            else:
                run.append(token_id)
                after_special = False
        return out + self._sp.decode(run)

    def id_to_piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(token_id)
