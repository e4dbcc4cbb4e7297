"""Configuration from `LASTMILE_*` environment variables and an optional lastmile.toml."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from transcription import DeterministicDrafter, Drafter, EngineOptions, OpenAICompatibleDrafter


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting has a safe default for the embedded mode (one process, SQLite)."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    database_url: str = ""
    public_url: str = ""
    demo: bool = False
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    join_early_minutes: int = 15
    join_grace_minutes: int = 30
    db_threads: int = 8
    ice_servers: str = "[]"
    server_ice_servers: str = "[]"
    transcribe: bool = True
    whisper_model: str = ""  # a faster-whisper model name or folder; empty: the bundled tiny.en
    whisper_device: str = "cpu"
    whisper_compute_type: str = ""  # empty: int8 on the CPU, float16 on CUDA
    whisper_threads: int = 0  # threads per transcription; 0 picks from the cores
    whisper_workers: int = 0  # transcriptions at once; 0 picks from the cores
    whisper_language: str = ""  # for multilingual models; empty detects it
    whisper_min_window: float = 10.0  # seconds of audio the encoder sees at least
    llm_url: str = ""  # an OpenAI-compatible chat endpoint for drafting; empty: the offline drafter
    llm_model: str = "default"
    llm_api_key: str = ""
    audio_retention_days: int = 0
    visit_grace_seconds: float = 20.0
    visit_empty_seconds: float = 300.0
    log_format: str = "json"
    smtp_url: str = ""  # smtp://user:pass@host:587?starttls=1 or smtps://host:465; empty: file outbox
    smtp_timeout_seconds: float = 30.0
    mail_from: str = ""  # e.g. "Agency <visits@agency.org>"; the organizer of every invite
    sms_url: str = ""  # a Twilio-compatible Messages endpoint, account:token@ in the URL; empty: file outbox
    sms_from: str = ""
    reminder_minutes: str = "1440,60,10"  # reminders this many minutes before a visit
    outbox_max_attempts: int = 5
    outbox_retry_seconds: float = 60.0  # first retry; doubles each attempt
    outbox_poll_seconds: float = 60.0  # safety-net wake-up for rows other processes wrote
    outbox_sender: bool = True  # run the reminder sender in this process
    client_cutoff_hours: int = 24  # clients may reschedule or cancel up to this long before
    no_show_minutes: int = 15  # a client not there this long after the start is a no-show; 0: off
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        """Return the database URL, defaulting to SQLite in the data folder."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'lastmile.db').resolve()}"

    @property
    def base_url(self) -> str:
        """Return the URL people reach this server at, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def browser_ice(self) -> list[dict[str, Any]]:
        """Return the ICE servers the browsers are given (LASTMILE_ICE_SERVERS)."""
        return parse_ice_servers(self.ice_servers, "LASTMILE_ICE_SERVERS")

    def server_ice(self) -> list[dict[str, Any]]:
        """Return the ICE servers of the server's own audio peer (LASTMILE_SERVER_ICE_SERVERS)."""
        return parse_ice_servers(self.server_ice_servers, "LASTMILE_SERVER_ICE_SERVERS")

    def whisper_options(self) -> EngineOptions:
        """Return how Whisper is loaded and run, or raise SystemExit naming the bad setting."""
        try:
            return EngineOptions(
                model=self.whisper_model.strip(),
                device=self.whisper_device.strip().lower(),  # type: ignore[arg-type]  # checked by EngineOptions
                compute_type=self.whisper_compute_type.strip(),
                cpu_threads=self.whisper_threads,
                workers=self.whisper_workers,
                language=self.whisper_language.strip(),
                min_window=self.whisper_min_window,
            )
        except ValueError as exc:
            raise SystemExit(f"LASTMILE_WHISPER_*: {exc}") from exc

    def drafter(self) -> Drafter:
        """Return the note drafter: the agency's LLM endpoint if configured, else the offline one."""
        if not self.llm_url.strip():
            return DeterministicDrafter()
        return OpenAICompatibleDrafter(self.llm_url.strip(), self.llm_model, api_key=self.llm_api_key or None)

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @property
    def session_absolute(self) -> timedelta:
        return timedelta(hours=self.session_absolute_hours)


_TRUE = {"1", "true", "yes", "on"}


def parse_ice_servers(raw: str, name: str) -> list[dict[str, Any]]:
    """Parse a JSON list like [{"urls": "stun:stun.example.org"}], or raise SystemExit naming `name`."""
    try:
        value = json.loads(raw or "[]")
    except ValueError as exc:
        raise SystemExit(f"{name} is not JSON: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(v, dict) and "urls" in v for v in value):
        raise SystemExit(f'{name} must be a JSON list of {{"urls": ...}} objects')
    return value


def load_settings(env: dict[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """Read lastmile.toml (if any), then `LASTMILE_*` variables, which win."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    path = toml_path or Path(env.get("LASTMILE_CONFIG", "lastmile.toml"))
    if path.is_file():
        with path.open("rb") as fh:
            values.update({k.lower(): v for k, v in tomllib.load(fh).items()})
    for key, value in env.items():
        if key.startswith("LASTMILE_") and key != "LASTMILE_CONFIG":
            values[key.removeprefix("LASTMILE_").lower()] = value
    known = {f.name: f for f in fields(Settings)}
    kwargs: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, raw in values.items():
        f = known.get(name)
        if f is None or name == "extra":
            extra[name] = str(raw)
            continue
        kwargs[name] = _coerce(name, f.type, raw)
    return Settings(**kwargs, extra=extra)


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return raw if isinstance(raw, bool) else str(raw).strip().lower() in _TRUE
        if kind == "Path":
            return Path(str(raw))
    except ValueError as exc:
        raise SystemExit(f"LASTMILE_{name.upper()}: {raw!r} is not a valid {kind}") from exc
    return str(raw)
