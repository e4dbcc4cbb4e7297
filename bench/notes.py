"""Benchmark: from "End visit" to the draft note, streamed transcription against a batch after the call.

For 1, 5 and 10 minute two-speaker visits (espeak-ng, two voices alternating the lines of a
home-visit script with pauses, 16 kHz mono through sox; each speaker's track is silent while the
other talks), each run in its own fresh process so that its CPU time and peak RSS are its own:

- **pipeline**: what the server does during a visit. A `StreamingTranscriber` is fed both speakers'
  audio in 20 ms chunks and stores each segment in a real SQLite case record
  (`caserecord.transcripts.add_segment` through `caserecord.db.Database`) as it is transcribed.
  At "End visit": `visits.lifecycle.end`, finish both speakers (the last utterances), then draft and
  file the note with the server's own `transcription.after_visit.AfterVisit.draft` (the
  deterministic drafter). Segments are stored by the server's own live sink,
  `transcription.live.LiveTranscription.on_segment`.
- **batch** (the baseline): the same model with the same decoding options, after the call:
  `transcription.transcribe_file` on each speaker's whole track, the segments stored the same way,
  then the same drafting and filing.

To keep the bench short the pipeline is fed at 10x real time up to the last 20 s of the visit; it is
then let finish what was queued (at real time it keeps up: see the real-time factor), and the last
20 s are fed at real time, with "End visit" pressed as the audio ends, one second after the last
word. CPU time counts from the start of the feed (pipeline) or from the end of the call (batch) to the
note filed; model loading and a warm-up transcription come before it in both.

Run alone: `.venv/bin/python -m bench.notes [--quick] [--minutes 5] [--repeat 3]` prints the Markdown
section; with `--repeat` each run is made that many times and the median CPU shown, as CPU time
under other load on 2 shared cores varies by tens of percent from run to run.

Why one module of this length: it is one benchmark end to end (its scenario, the process it
measures, its baseline in the same run, and its section of RESULTS.md); nothing else uses its parts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jiwer
from sqlmodel import Session

from bench.machine import ROOT
from bench.timing import say
from caserecord import notes
from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database, make_engine, migrate
from caserecord.models import User, Visit, VisitParticipant
from tests.transcription.audio import BYTES_PER_SECOND, normalize, speak, write_wav
from transcription import DeterministicDrafter, Engine, Segment, StreamingTranscriber
from transcription import transcribe_file as batch_transcribe
from transcription.after_visit import AfterVisit, context_and_segments
from transcription.audio import Audio, read_audio
from transcription.live import LiveTranscription
from transcription.model import BUNDLED
from visits import lifecycle
from web.settings import load_settings

LENGTHS = (1, 5, 10)  # minutes
QUICK_LENGTHS = (1, 5)
SPEED = 10.0  # the pipeline's feed, times real time, before the last stretch
REAL_TIME_TAIL = 20.0  # seconds fed at real time before "End visit"
CHUNK = 0.02  # seconds of audio per feed, as an uplink delivers it
LEAD = 1.0  # silence before the first line
TAIL = 1.0  # silence after the last word, before "End visit"
VOICES = {"worker": "en-us", "client": "en-gb+f3"}
GAPS = (0.8, 1.2, 0.7, 1.5, 0.9, 1.1)  # pauses between lines, in turn
VISIT_START = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)

# A home visit, worker and client in turn. Longer visits go round again from the top.
SCRIPT: tuple[str, ...] = (
    "Good morning, this is Maria from family services. Thank you for making time to talk today.",
    "Good morning. Things have been hard since the baby was born, and I am very tired.",
    "I understand. Before we start, can you tell me who is living in the house right now?",
    "It is me, my two boys, the baby, and my mother stays with us most weekends.",
    "How are the children doing at school this term?",
    "They are doing well at school. The older one likes his new teacher, and he reads every night.",
    "That is good to hear. Last time you mentioned the rent. Has anything changed since then?",
    "My landlord says we will be evicted next month if I do not pay what I owe.",
    "That sounds very stressful. Do you know how much is owed, and since when?",
    "About nine hundred dollars. I fell behind in January when my hours were cut at the store.",
    "I will call the housing office about your rent this week and ask about the emergency fund.",
    "Thank you. I can bring the letter from the landlord to our next meeting.",
    "Are you getting any help with food at the moment, for you and the children?",
    "We go to the food bank on Saturdays, but by Thursday the cupboards are usually empty.",
    "I can put you in touch with the school about free lunches for both boys.",
    "That would help a lot. I did not know we could still apply in the middle of the year.",
    "You can apply at any time. I will bring the form with me, and we can fill it in together.",
    "Okay. I am not very good with forms, so that would make it easier.",
    "How have you been sleeping since the baby came home from the hospital?",
    "Not much. She wakes up every two hours, and my mother can only help on the weekend.",
    "Have you been able to see the nurse or the doctor for your own check up?",
    "I missed the last appointment because the bus did not come, and I had no one to watch the boys.",
    "Let us book it again. I can arrange a taxi voucher so that the bus is not a problem.",
    "A taxi would be much better. The clinic is far away, and it takes an hour each way.",
    "And how are you feeling in yourself, with everything that is going on?",
    "Some days are fine. Other days I just feel very low, and I do not want to get out of bed.",
    "Thank you for telling me that. It is important, and you are not alone with it.",
    "My sister says I should talk to someone, but I do not know where to start.",
    "There is a support group for new mothers at the community centre on Wednesday mornings.",
    "Maybe I could try that. Do they let you bring the baby along?",
    "Yes, babies are welcome, and there is a quiet room if she needs to sleep.",
    "Okay, I will think about it. My sister could drive me there the first time.",
    "Let us talk about the boys for a moment. Is anyone helping them with their homework?",
    "My mother helps when she is here. During the week I try, but I am tired in the evenings.",
    "The library runs a homework club after school on Mondays and Thursdays, and it is free.",
    "The older one would like that. His friends from class already go there.",
    "Is there anything about the house itself that needs fixing, like heating or damp?",
    "The heating in the back bedroom does not work, and there is mould near the window.",
    "I will write to the landlord about the heating, and I will copy you on the letter.",
    "Please do. He never answers when I call him, and he does not reply to my messages.",
    "Do you feel safe at home, and is there anyone who makes you feel afraid?",
    "Yes, I feel safe. The boys' father does not come around anymore, and that is better.",
    "I am glad to hear it. If that ever changes, you can call me or the helpline at any time.",
    "I know. I still have the card you gave me last time, it is on the fridge.",
    "How is your money this month apart from the rent, for things like electricity and the phone?",
    "The electricity bill came yesterday. It is higher than last winter, and I cannot pay all of it.",
    "We can ask the energy company for a payment plan. I have seen them agree to it before.",
    "That would be good. I do not want them to cut us off with a small baby in the house.",
    "They should not do that in winter, but let us make the call together to be sure.",
    "Can we do it now? I have the account number here on the letter.",
    "We can call them at the end of this visit. First let me check a few more things with you.",
    "Okay. The baby is asleep, so we have some time.",
    "Are you still looking for work, or are you waiting until the baby is a bit older?",
    "I would like to work a few mornings a week, once I find someone I trust to watch her.",
    "There is a childcare subsidy you may be able to get. I will look into it for you.",
    "Thank you. I did not know about that either.",
    "Let us meet again next Tuesday at ten, and please bring the letter with you.",
    "Yes, that works for me. See you on Tuesday. Goodbye.",
)


@dataclass(frozen=True, slots=True)
class Line:
    role: str  # "worker" or "client"
    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Script:
    """One generated visit: each speaker's WAV in `folder`, and the lines where they were placed."""

    minutes: int
    folder: Path
    duration: float
    lines: tuple[Line, ...]

    def wav(self, role: str) -> Path:
        return self.folder / f"{role}.wav"

    @property
    def speech(self) -> float:
        return sum(line.end - line.start for line in self.lines)

    def words(self, role: str) -> str:
        return normalize(" ".join(line.text for line in self.lines if line.role == role))


@dataclass(frozen=True, slots=True)
class Measured:
    """One run in its own process: "pipeline" or "batch"."""

    mode: str
    end_to_note: float  # seconds from "End visit" to the note filed
    cpu: float  # CPU seconds of the process (all threads) in the measured window
    rss_mb: float  # the process's peak resident set size
    segments: int
    calls: int  # Whisper transcriptions (the pipeline: one per utterance; the batch: one per track)
    texts: dict[str, str]  # role -> the stored transcript of that speaker, in time order
    note_ok: bool  # a note was filed
    wall: float  # seconds from the start of the measured window to the note
    catch_up: float  # pipeline: seconds spent letting the transcriber finish the 10x part
    load: str

    def wer(self, script: Script) -> float:
        truth = [script.words(r) for r in VOICES]
        said = [normalize(self.texts.get(r, "")) for r in VOICES]
        return float(jiwer.wer(truth, said))


@dataclass(frozen=True, slots=True)
class Round:
    minutes: int
    duration: float
    speech: float
    lines: int
    pipeline: Measured | None
    batch: Measured | None
    wer_pipeline: float | None
    wer_batch: float | None
    error: str | None = None
    cpu_ratios: tuple[float, ...] = ()  # pipeline / batch CPU of each repeat, in run order


@dataclass(frozen=True, slots=True)
class NotesBench:
    rounds: list[Round]
    model: str
    synth_seconds: float
    repeat: int = 1


# --- the audio -----------------------------------------------------------------------------------


def _synthesize(needed: int) -> list[bytes]:
    """Speak the first `needed` distinct script lines (alternating voices) once, with progress."""
    out: list[bytes] = []
    started = time.perf_counter()
    for i in range(needed):
        out.append(speak(SCRIPT[i], VOICES["worker" if i % 2 == 0 else "client"]))
        if (i + 1) % 10 == 0 or i + 1 == needed:
            say(f"  espeak-ng: {i + 1}/{needed} lines, {time.perf_counter() - started:.0f} s")
    return out


def _lay_out(minutes: int, spoken: list[bytes], folder: Path) -> Script:
    """Place lines in turn until the visit is `minutes` long; write each speaker's track as a WAV."""
    target = minutes * 60.0
    placed: list[tuple[int, float]] = []
    at = LEAD
    i = 0
    while True:
        pcm = spoken[i % len(spoken)]
        end = at + len(pcm) / BYTES_PER_SECOND
        if placed and end + TAIL > target:
            break
        placed.append((i, at))
        at = end + GAPS[i % len(GAPS)]
        i += 1
    last = placed[-1]
    duration = last[1] + len(spoken[last[0] % len(spoken)]) / BYTES_PER_SECOND + TAIL
    size = round(duration * 16_000) * 2
    tracks = {role: bytearray(size) for role in VOICES}
    lines = []
    for index, start in placed:
        role = "worker" if index % 2 == 0 else "client"
        pcm = spoken[index % len(spoken)]
        begin = round(start * 16_000) * 2
        tracks[role][begin : begin + len(pcm)] = pcm
        lines.append(Line(role, SCRIPT[index % len(SCRIPT)], start, start + len(pcm) / BYTES_PER_SECOND))
    folder.mkdir(parents=True, exist_ok=True)
    for role, pcm_track in tracks.items():
        write_wav(folder / f"{role}.wav", bytes(pcm_track))
    script = Script(minutes, folder, round(duration, 3), tuple(lines))
    (folder / "visit.json").write_text(json.dumps({"duration": script.duration}))
    return script


def make_visits(lengths: Sequence[int], tmp: Path) -> list[Script]:
    """Speak the script once and lay it out into one visit per length."""
    # A line takes about 7 s with its pause; the script goes round again when a visit is longer.
    needed = min(len(SCRIPT), int(max(lengths) * 60 / 5) + 1)
    spoken = _synthesize(needed)
    write_wav(tmp / "warm.wav", spoken[0])
    return [_lay_out(m, spoken, tmp / f"visit-{m}") for m in lengths]


# --- one measured run, in its own process ---------------------------------------------------------


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _progress(message: str) -> None:
    print(f"PROGRESS {message}", flush=True)


class _CountingEngine(Engine):
    """The engine, counting transcriptions (and segment writes) in flight: 0 means the pipeline is idle."""

    busy = 0

    async def transcribe(self, audio: Audio, *, speaker: str, offset: float = 0.0) -> list[Segment]:
        self.busy += 1
        try:
            return await super().transcribe(audio, speaker=speaker, offset=offset)
        finally:
            self.busy -= 1


async def _measure(mode: str, folder: Path, db_dir: Path) -> dict[str, Any]:
    """Set up a case record and the engine, then run `mode` on the visit in `folder`; return numbers."""
    duration = float(json.loads((folder / "visit.json").read_text())["duration"])
    db = Database(make_engine(f"sqlite:///{db_dir / 'lastmile.db'}"))
    migrate(db.engine)

    def setup(s: Session) -> tuple[int, dict[str, str]]:
        worker = User(
            email="worker@agency.test",
            name="Maria Lopez",
            role="worker",
            password_hash=secrets.token_hex(8),  # nobody signs in
            timezone="America/Los_Angeles",
            feed_token=secrets.token_urlsafe(24),
        )
        s.add(worker)
        s.flush()
        assert worker.id is not None
        actor = Actor(worker.id, "worker")
        case, client = create_case(s, actor, worker_id=worker.id, client_name="Dana Reyes")
        assert case.id is not None
        visit = Visit(
            case_id=case.id,
            worker_id=worker.id,
            status="in_progress",
            join_token=secrets.token_urlsafe(32),
            join_opens_at=VISIT_START,
            join_expires_at=VISIT_START + timedelta(hours=2),
            created_at=VISIT_START,
            started_at=VISIT_START,
            recording=True,
        )
        s.add(visit)
        s.flush()
        assert visit.id is not None
        me, _ = lifecycle.staff_participant(s, actor, visit.id, VISIT_START)
        them = VisitParticipant(
            visit_id=visit.id,
            kind="client",
            name=client.name,
            via="link",
            consent=True,
            state="admitted",
            joined_at=VISIT_START,
            admitted_at=VISIT_START,
        )
        s.add(them)
        s.flush()
        return visit.id, {"worker": f"worker:{me.id}", "client": f"client:{them.id}"}

    with db.session(write=True) as s:
        visit_id, labels = setup(s)

    engine = _CountingEngine(load_settings().whisper_options())
    await engine.start()
    await engine.transcribe(read_audio(folder.parent / "warm.wav"), speaker=labels["worker"])  # warm-up

    live = LiveTranscription(db, engine)

    async def nobody(visit_id: int, message: dict[str, Any], kind: str | None) -> None:
        """No page is open: the captions and risk suggestions reach nobody."""

    async def on_segment(seg: Segment) -> None:
        # The server's own live sink: store the segment, caption it, look for risks in it.
        engine.busy += 1
        try:
            await live.on_segment(visit_id, nobody, seg)
        finally:
            engine.busy -= 1

    tracks: dict[str, bytes] = {}
    for role in VOICES:
        with wave.open(str(folder / f"{role}.wav"), "rb") as w:
            tracks[role] = w.readframes(w.getnframes())
    ended_at = VISIT_START + timedelta(seconds=duration)
    catch_up = 0.0
    _progress(f"{mode}: model loaded, visit of {duration:.0f} s")

    cpu0, wall0 = _cpu(), time.perf_counter()
    if mode == "pipeline":
        transcriber = StreamingTranscriber(engine, on_segment)
        step = round(CHUNK * 16_000) * 2
        total = min(len(t) for t in tracks.values())
        switch = max(0, int((duration - REAL_TIME_TAIL) / CHUNK)) * step
        last_report = time.perf_counter()

        async def feed(begin: int, end: int, speed: float) -> None:
            nonlocal last_report
            t0 = time.perf_counter()
            for pos in range(begin, end, step):
                due = t0 + (pos - begin) / BYTES_PER_SECOND / speed
                if due - time.perf_counter() > 0.005:
                    await asyncio.sleep(due - time.perf_counter())
                offset = pos / BYTES_PER_SECOND
                for role in VOICES:
                    await transcriber.feed(labels[role], offset, tracks[role][pos : pos + step])
                if time.perf_counter() - last_report > 10:
                    last_report = time.perf_counter()
                    _progress(f"pipeline: fed {offset:.0f} of {duration:.0f} s at {speed:g}x")

        await feed(0, switch, SPEED)
        began = time.perf_counter()
        quiet = 0
        while quiet < 3:  # nothing transcribing or being stored for 0.3 s: the 10x backlog is done
            await asyncio.sleep(0.1)
            quiet = quiet + 1 if engine.busy == 0 else 0
        catch_up = time.perf_counter() - began
        _progress(f"pipeline: caught up in {catch_up:.1f} s; the last {REAL_TIME_TAIL:.0f} s at real time")
        await feed(switch, total, 1.0)
        end = time.perf_counter()  # "End visit", as the audio ends
        await db.write(lifecycle.end, Actor.system(), visit_id, "bench", ended_at, check=False)
        await asyncio.gather(*(transcriber.finish(labels[r]) for r in VOICES))
    else:
        end = time.perf_counter()  # the call is over; every track is on disk
        await db.write(lifecycle.end, Actor.system(), visit_id, "bench", ended_at, check=False)
        _progress(f"batch: transcribing both {duration:.0f} s tracks")
        results = await asyncio.gather(
            *(batch_transcribe(engine, folder / f"{r}.wav", labels[r]) for r in VOICES)
        )
        for segments in results:
            for seg in segments:
                await on_segment(seg)
    # The server's own after-visit job: every segment is stored, so there is nothing to catch up on.
    after = AfterVisit(db, lambda: ended_at, None, DeterministicDrafter(), lambda visit_id: [])
    await after.draft(visit_id)
    done = time.perf_counter()
    _, segments = await db.read(context_and_segments, visit_id)
    note_ok = visit_id not in await db.read(notes.visits_without_note)
    cpu = _cpu() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    texts = {r: " ".join(seg.text for seg in segments if seg.speaker == labels[r]) for r in VOICES}
    await asyncio.to_thread(engine.close)
    db.close()
    return {
        "mode": mode,
        "end_to_note": done - end,
        "cpu": cpu,
        "rss_mb": rss_mb,
        "segments": len(segments),
        "calls": engine.stats().calls - 1,  # not the warm-up
        "texts": texts,
        "note_ok": note_ok,
        "wall": done - wall0,
        "catch_up": catch_up,
        "load": f"{os.getloadavg()[0]:.1f}",
    }


def _run_child(mode: str, script: Script, log: Path) -> Measured:
    """Run one measurement in a fresh Python process; relay its progress lines."""
    db_dir = Path(tempfile.mkdtemp(prefix=f"db-{mode}-", dir=script.folder))  # a fresh case record per run
    cmd = [sys.executable, "-m", "bench.notes", "--child", mode, str(script.folder), str(db_dir)]
    result: dict[str, Any] | None = None
    with log.open("ab") as err, subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode().rstrip()
            if line.startswith("PROGRESS "):
                say(f"    {line.removeprefix('PROGRESS ')}")
            elif line.startswith("RESULT "):
                result = json.loads(line.removeprefix("RESULT "))
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"the {mode} run failed (exit {proc.returncode}); see {log}")
    return Measured(**result)


# --- the bench -------------------------------------------------------------------------------------


def _model_name() -> str:
    return load_settings().whisper_model.strip() or BUNDLED


def _median(runs: list[Measured]) -> Measured:
    return sorted(runs, key=lambda m: m.cpu)[len(runs) // 2]


def run(quick: bool = False, repeat: int = 1, minutes: Sequence[int] = ()) -> NotesBench:
    """Generate the visits, then per length run the pipeline and the batch (about 4 min; quick: 2).

    Each pair of runs is made `repeat` times; a round reports the run of median CPU of each mode.
    """
    lengths = tuple(minutes) or (QUICK_LENGTHS if quick else LENGTHS)
    say(f"[notes] End visit -> draft note, streamed vs batch; visits of {', '.join(map(str, lengths))} min")
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="lastmile-notes-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        scripts = make_visits(lengths, tmp)
        synth = time.perf_counter() - t0
        log = tmp / "children.log"
        for script in scripts:
            say(
                f"[notes] {script.minutes} min visit ({script.duration:.0f} s, {len(script.lines)} lines): "
                "pipeline, then batch, each in its own process"
            )
            runs: dict[str, list[Measured]] = {"pipeline": [], "batch": []}
            facts = (script.minutes, script.duration, script.speech, len(script.lines))
            try:
                for _ in range(repeat):
                    for mode, done in runs.items():
                        m = _run_child(mode, script, log)
                        done.append(m)
                        say(
                            f"  {mode + ':':9s} note {m.end_to_note:.2f} s after End, CPU {m.cpu:.1f} s, "
                            f"{m.rss_mb:.0f} MB"
                        )
            except RuntimeError as exc:
                say(f"  failed: {exc}")
                say(log.read_text()[-3000:])
                rounds.append(Round(*facts, None, None, None, None, str(exc)))
                continue
            a, b = _median(runs["pipeline"]), _median(runs["batch"])
            ratios = tuple(x.cpu / y.cpu for x, y in zip(runs["pipeline"], runs["batch"], strict=True))
            rounds.append(Round(*facts, a, b, a.wer(script), b.wer(script), cpu_ratios=ratios))
    return NotesBench(rounds, _model_name(), synth, repeat)


def markdown(result: NotesBench) -> list[str]:
    out = [
        "## End visit to draft note",
        "",
        "Two-speaker visits made with espeak-ng (two voices taking turns through a home-visit script,",
        "pauses of 0.7 to 1.5 s between lines, each speaker on their own 16 kHz track, silent while the",
        "other talks), transcribed with the engine's default model and settings",
        f"({result.model}, int8, CPU), each run in its own fresh process.",
        "**Pipeline**: as the server does during a visit, a `StreamingTranscriber` fed both speakers'",
        "audio in 20 ms chunks, storing each segment in a SQLite case record as it comes; at End visit",
        "the visit is ended, both speakers finished (their last utterances transcribed) and the note",
        "drafted and filed by `transcription.after_visit` (deterministic drafter). To keep the bench short",
        f"the audio is fed at {SPEED:g}x real time up to the last {REAL_TIME_TAIL:.0f} s, the transcriber is",
        "let finish what queued up (**catch-up**, an artefact of the fast feed; 0.3 s is the least it",
        f"can read, i.e. nothing was queued), then the last {REAL_TIME_TAIL:.0f} s are fed at real time",
        f"and End is pressed as the audio ends ({TAIL:.0f} s after the last word). **Batch** (the",
        "baseline): plain faster-whisper after the call, through the same engine (same model and",
        "decoding options, Silero VAD on): each speaker's whole track in one `transcribe_file`,",
        "segments stored the same way, the same drafting and filing.",
        "**End → note**: from End visit to the note filed; ratio pipeline / batch. **CPU**: the",
        "process's CPU time, all threads, from the first chunk fed (pipeline) or from End (batch) to",
        "the note; model loading and a warm-up transcription come before it in both. **RTF**: CPU",
        "seconds per second of visit (two tracks of that length). **Peak RSS**: the process's",
        "`ru_maxrss`, model and imports included. **Whisper calls**: one per utterance (pipeline),",
        "one per track (batch). **WER**: both speakers' stored transcripts against the script (lower",
        "case, numbers spelt out, punctuation dropped). Aims: the note within 2 s of the end of a",
        "10-minute visit, CPU pipeline / batch at most 1.10, under 500 MB. **Load**: the 1-minute",
        "load average as each run ended (2 shared cores).",
        *(
            [
                f"Each run was made {result.repeat} times, pipeline and batch in turn, on the same audio:",
                "CPU, RTF and the other columns are those of the run of median CPU of each mode; in",
                "brackets the CPU ratio of each pair of runs, in order.",
            ]
            if result.repeat > 1
            else []
        ),
        "",
        "| visit | speech | End → note: pipeline / batch | ratio | CPU s: pipeline / batch | CPU ratio "
        "| RTF pipeline / batch | peak RSS pipeline / batch | WER pipeline / batch | segments "
        "| Whisper calls | catch-up | load |",
        "| --- | ---: | --- | ---: | --- | ---: | --- | --- | --- | --- | --- | ---: | --- |",
    ]
    for r in result.rounds:
        label = f"{r.minutes} min ({r.duration:.0f} s, {r.lines} lines)"
        a, b = r.pipeline, r.batch
        if a is None or b is None or r.error:
            out.append(f"| {label} | failed: {r.error} | | | | | | | | | | | |")
            continue
        notes_ok = "" if a.note_ok and b.note_ok else " (note incomplete)"
        spread = f" ({', '.join(f'{x:.2f}' for x in r.cpu_ratios)})" if len(r.cpu_ratios) > 1 else ""
        out.append(
            f"| {label} | {r.speech:.0f} s | {a.end_to_note:.2f} s / {b.end_to_note:.2f} s{notes_ok} "
            f"| {a.end_to_note / b.end_to_note:.3f} | {a.cpu:.1f} / {b.cpu:.1f} | {a.cpu / b.cpu:.2f}"
            f"{spread} | {a.cpu / r.duration:.3f} / {b.cpu / r.duration:.3f} "
            f"| {a.rss_mb:.0f} / {b.rss_mb:.0f} MB "
            f"| {100 * (r.wer_pipeline or 0):.1f}% / {100 * (r.wer_batch or 0):.1f}% "
            f"| {a.segments} / {b.segments} | {a.calls} / {b.calls} | {a.catch_up:.1f} s "
            f"| {a.load} / {b.load} |"
        )
    out += [
        "",
        f"Speaking the script with espeak-ng took {result.synth_seconds:.0f} s (not in any figure).",
        "",
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notes", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="only the 1 and 5 minute visits")
    parser.add_argument("--minutes", type=int, nargs="+", default=(), help="only visits of these lengths")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode per visit (median shown)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "VISIT_DIR", "DB_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        mode, folder, db_dir = args.child
        result = asyncio.run(_measure(mode, Path(folder), Path(db_dir)))
        print(f"RESULT {json.dumps(result)}", flush=True)
        return 0
    print("\n".join(markdown(run(quick=args.quick, repeat=args.repeat, minutes=args.minutes))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
