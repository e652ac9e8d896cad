"""Stage-2 curation against a fake OpenAI-compatible endpoint on 127.0.0.1 (no network)."""

from __future__ import annotations

import csv
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from training.curate import FIX_PROMPT, OpenAIChatFixer, VerificationError, apply_verification, curate, reject_reason

CLEAN = "A small red square sits on a plain blue background, with nothing else visible in the picture."


class FakeChatServer:
    """Answers /v1/chat/completions: 1st distinct paragraph -> clean text, 2nd -> an apology, others -> 500."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.seen: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                index = outer.seen.setdefault(body["messages"][1]["content"], len(outer.seen))
                if index >= 2:
                    self.send_response(500)
                    self.end_headers()
                    return
                text = CLEAN if index == 0 else "I'm sorry, I made a mistake. Here is the paragraph again."
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def test_reject_rules() -> None:
    assert reject_reason(CLEAN) is None
    assert "sorry" in reject_reason("I'm sorry, I made a mistake in the given paragraph. " * 2)
    assert "apologi" in reject_reason("I apologize for that, the picture shows a cat on a sofa today.")
    assert reject_reason("") == "empty"
    assert "shorter" in reject_reason("A cat.")
    assert reject_reason("Это кошка, которая сидит на диване у окна в большой светлой комнате.").startswith("not English")


def test_not_english_is_a_language_check_not_an_ascii_check() -> None:
    import random
    import string

    rng = random.Random(0)
    gibberish = [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
                          for _ in range(rng.randint(12, 40))) for _ in range(10)]
    gibberish.append("asdf qwer zxcv lkjh poiu mnbv ghjk tyui bnm, wert dfgh cvbn rtyu fghj vbnm ertyu.")
    assert all(reject_reason(g).startswith("not English") for g in gibberish)  # 11 of 11 used to pass
    for other in ("Une petite voiture rouge est garée devant la maison blanche, sous un ciel bleu sans nuages.",
                  "Ein kleiner Hund läuft über die grüne Wiese, während die Sonne hinter den Bergen untergeht.",
                  "Un perro pequeño corre por el parque verde mientras el sol se pone detrás de las montañas.",
                  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt."):
        assert reject_reason(other).startswith("not English"), other
    assert reject_reason("In this photograph, a young woman wearing a black t-shirt holds her smartphone while "
                         "a brown dog runs across the grassy park. She's smiling; two cars are parked nearby.") is None


@pytest.mark.system
def test_curation_end_to_end_with_the_stage1_model(tiny_model_dir, reference_dir, tmp_path, monkeypatch) -> None:
    images = tmp_path / "candidates"
    images.mkdir()
    for name in ("gray_stripes.png", "photo_office.png", "shapes.png"):
        shutil.copy(reference_dir / "images" / name, images / name)
    (images / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "aligned"
    with FakeChatServer() as server:
        fixer = OpenAIChatFixer(server.url, "fake-chat", api_key="test-key", retries=2, backoff=0)
        summary = curate(images, out, fixer, model_dir=tiny_model_dir, min_tokens=12, max_new_tokens=6)
    assert summary == {"images": 4, "described": 3, "kept": 1, "rejected": 2}
    raw = [json.loads(line) for line in (out / "descriptions.jsonl").read_text().splitlines()]
    assert [r["image_id"] for r in raw] == ["gray_stripes", "photo_office", "shapes"]
    assert all(r["raw"] for r in raw)
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer test-key"
    assert first["body"]["model"] == "fake-chat"
    assert first["body"]["messages"] == [{"role": "system", "content": FIX_PROMPT},
                                         {"role": "user", "content": raw[0]["raw"]}]
    assert len(server.requests) == 2 + 2  # two answered, the third retried twice then given up
    assert not (out / "filter_cap.json").exists()  # nothing is in the set before a person checked it
    rejected = {r["image_id"]: r["reason"] for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    assert "sorry" in rejected["photo_office"] and rejected["shapes"].startswith("fixer failed")
    rows = list(csv.DictReader((out / "human_verification.csv").open()))
    assert [r["image_id"] for r in rows] == ["gray_stripes"] and rows[0]["verified"] == ""
    _mark(out, {"gray_stripes": "approved"})
    assert apply_verification(out)["captions"] == 1
    caps = json.loads((out / "filter_cap.json").read_text())["annotations"]
    assert caps == [{"image_id": "gray_stripes", "caption": CLEAN}]
    from training.data import AlignedDataset, TrainTransform

    ds = AlignedDataset(out, TrainTransform(56, (0.5,) * 3, (0.5,) * 3, "current"), seed=0)
    assert ds[(0, 0)]["caption"] == CLEAN and ds[(0, 0)]["skipped"] == 0

    # a rerun reuses the stored descriptions (no model needed) and asks the fixer again
    with FakeChatServer() as server2:
        again = curate(images, out, OpenAIChatFixer(server2.url, "m", retries=1, backoff=0), model_dir=None)
    assert again["described"] == 3 and server2.requests[0]["auth"] is None


def _mark(out, verdicts: dict[str, str], captions: dict[str, str] | None = None) -> None:
    """What the person doing the manual check does: fill in ``verified`` (and edit captions)."""
    path = out / "human_verification.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["verified"] = verdicts.get(row["image_id"], row["verified"])
        row["caption"] = (captions or {}).get(row["image_id"], row["caption"])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


class _SameFixer:
    def fix(self, paragraph: str) -> str:
        return paragraph


def test_the_final_set_is_built_from_the_human_check(tmp_path) -> None:
    from PIL import Image

    from training.__main__ import main

    images, out = tmp_path / "imgs", tmp_path / "out"
    images.mkdir()
    out.mkdir()
    texts = {f"img{i}": f"A photo number {i} of a brown dog that runs across a green park on a sunny afternoon."
             for i in range(4)}
    for image_id in texts:
        Image.new("RGB", (8, 8)).save(images / f"{image_id}.jpg")
    (out / "descriptions.jsonl").write_text("".join(json.dumps({"image_id": k, "raw": v}) + "\n"
                                                    for k, v in texts.items()))
    assert curate(images, out, _SameFixer())["kept"] == 4
    assert main(["verify", str(out)]) == 2  # nobody checked anything yet: refused, nothing written
    _mark(out, {"img0": "approved", "img1": "edited", "img2": "rejected"},
          {"img1": "A brown dog runs across a green park on a sunny afternoon."})
    with pytest.raises(VerificationError, match=r"line 5 \(img3\): verified is ''"):
        apply_verification(out)
    assert not (out / "filter_cap.json").exists()
    _mark(out, {"img3": "Rejected"})
    curate(images, out, _SameFixer())  # a rerun of curate keeps the decisions made
    assert main(["verify", str(out)]) == 0
    caps = json.loads((out / "filter_cap.json").read_text())["annotations"]
    assert caps == [{"image_id": "img0", "caption": texts["img0"]},
                    {"image_id": "img1", "caption": "A brown dog runs across a green park on a sunny afternoon."}]
    _mark(out, {"img0": "looks fine"})
    with pytest.raises(VerificationError, match="expected one of approved, edited, rejected"):
        apply_verification(out)


def test_unreachable_endpoint_fails_each_item_not_the_run(tmp_path) -> None:
    with FakeChatServer() as server:
        url = server.url
    fixer = OpenAIChatFixer(url, "m", retries=1, backoff=0, timeout=2)
    images = tmp_path / "imgs"
    images.mkdir()
    (tmp_path / "out").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(images / "a.jpg")
    (tmp_path / "out" / "descriptions.jsonl").write_text(json.dumps({"image_id": "a", "raw": "text"}) + "\n")
    summary = curate(images, tmp_path / "out", fixer)
    assert summary["kept"] == 0 and summary["rejected"] == 1


def test_cli_requires_one_fixer(tmp_path) -> None:
    from training.__main__ import main

    assert main(["curate", str(tmp_path), str(tmp_path / "o")]) == 2


def test_local_chat_model_fixer(tmp_path) -> None:
    """The local-model path: any transformers chat model folder (here a tiny random Llama)."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from training.curate import LocalChatFixer

    words = ["<unk>", "<s>", "</s>", "system", "user", "assistant", ":"] + FIX_PROMPT.replace(".", " ").replace(",", " ").split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    core = HFTokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.chat_template = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}assistant :"
    tok.save_pretrained(tmp_path / "chat")
    torch_model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                               num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    torch_model.save_pretrained(tmp_path / "chat")
    fixer = LocalChatFixer(tmp_path / "chat", max_new_tokens=5)
    out = fixer.fix("Remove any repeating sentences")
    assert isinstance(out, str) and out == fixer.fix("Remove any repeating sentences")  # greedy: deterministic
