"""Settings: every option from `LASTMILE_*` (or lastmile.toml), Whisper's and the drafter's included."""

from __future__ import annotations

import pytest

from transcription import DeterministicDrafter, EngineOptions, OpenAICompatibleDrafter
from web.settings import load_settings


def test_whisper_options_come_from_the_environment() -> None:
    env = {
        "LASTMILE_WHISPER_MODEL": "/models/base.en",
        "LASTMILE_WHISPER_DEVICE": "CUDA",
        "LASTMILE_WHISPER_THREADS": "3",
        "LASTMILE_WHISPER_WORKERS": "2",
        "HOME": "/root",
    }
    options = load_settings(env).whisper_options()
    assert (options.model, options.device, options.cpu_threads, options.workers) == (
        "/models/base.en",
        "cuda",
        3,
        2,
    )
    assert options.resolved_compute_type() == "float16"
    defaults = load_settings({}).whisper_options()
    assert defaults == EngineOptions()
    assert defaults.resolved_compute_type() == "int8"
    assert defaults.resolved_workers() >= 1 and defaults.resolved_cpu_threads() >= 1
    assert load_settings({**env, "LASTMILE_WHISPER_WORKERS": "1"}).whisper_options().workers == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LASTMILE_WHISPER_DEVICE": "tpu"}, "'cpu' or 'cuda'"),
        ({"LASTMILE_WHISPER_THREADS": "four"}, "LASTMILE_WHISPER_THREADS: 'four' is not a valid int"),
        ({"LASTMILE_WHISPER_WORKERS": "-1"}, "workers"),
    ],
)
def test_bad_whisper_options_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        load_settings(env).whisper_options()


def test_the_drafter_comes_from_the_settings() -> None:
    assert isinstance(load_settings({}).drafter(), DeterministicDrafter)
    drafter = load_settings(
        {"LASTMILE_LLM_URL": "http://llm.internal:8000/v1/", "LASTMILE_LLM_MODEL": "qwen"}
    ).drafter()
    assert isinstance(drafter, OpenAICompatibleDrafter)
    assert drafter.url == "http://llm.internal:8000/v1/chat/completions"
    assert drafter.name == "openai-compatible:qwen"
