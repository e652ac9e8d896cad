import pickle
import subprocess
import sys

from engine.protocol import Describe, Failed, ErrorKind, GenerationSettings, ImageInput, Turn


def test_protocol_and_image_io_import_without_torch():
    code = ("import sys, engine, engine.protocol, engine.image_io\n"
            "heavy = [m for m in ('torch', 'transformers', 'PySide6') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_messages_survive_the_pipe():
    request = Describe(3, "conv", "What is on screen?", (Turn("user", "hi", ("a",)),), ("b",),
                       (ImageInput("b", b"\x00" * 12, "rgb", (2, 2)),), GenerationSettings.greedy())
    assert pickle.loads(pickle.dumps(request)) == request
    failed = Failed(3, ErrorKind.BAD_IMAGE, "detail")
    assert pickle.loads(pickle.dumps(failed)).kind is ErrorKind.BAD_IMAGE


def test_defaults_are_the_official_demo_values():
    s = GenerationSettings()
    assert (s.max_new_tokens, s.num_beams, s.do_sample, s.top_p, s.temperature, s.repetition_penalty,
            s.max_length) == (300, 1, True, 0.9, 1.0, 1.05, 2000)
    assert GenerationSettings.greedy().do_sample is False
