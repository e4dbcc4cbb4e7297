"""Benchmark: concurrent audio uplinks (aiortc clients sending speech) against one UplinkRegistry.

The server side (`visits.uplink.UplinkRegistry` + `visits.audio.AudioStore` writing real WAVs to a
temporary folder, with a sink that counts what it is fed) runs in its own process, behind a small
bench-only HTTP endpoint that takes offers and reports its own CPU time and event-loop lag, so its
numbers are not mixed with the clients' Opus encoding. This process is the clients: N aiortc peers,
each sending the same espeak-ng speech (48 kHz, paced in real time, Opus on the wire as from a
browser), two uplinks per visit. Per N: server CPU per uplink, event-loop lag (a 10 ms ticker's
oversleep), audio lost (gaps the server filled with silence, and received vs sent samples), the
time accept() takes and the time from offer to `connected`.

Run alone: `.venv/bin/python -m bench.uplinks [--quick]` prints the Markdown section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import os
import signal
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import av
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.machine import ROOT
from bench.serving import serve_until_signalled
from bench.timing import percentile, say
from tests.visits.audio_fixtures import make_speech_wav  # the speech the uplink tests use
from visits.audio import SAMPLE_RATE, AudioStore
from visits.uplink import UplinkError, UplinkKey, UplinkRegistry

COUNTS = (1, 10, 20, 40)
SPEECH = (
    "I moved in with my sister in March, and since then the rent has gone up twice. "
    "I work nights at the warehouse, so mornings are hard, but I can do Tuesdays or Thursdays. "
    "The letter from the landlord says I have thirty days, and I do not know who to call."
)
FRAME = 960  # 20 ms at 48 kHz, what a browser's Opus encoder takes at a time
TICK = 0.010


# --- the server process ------------------------------------------------------------------------


class _CountingSink:
    """A sink that only counts: the transcription side's cost is not part of this benchmark."""

    def __init__(self) -> None:
        self.bytes = 0

    async def feed(self, speaker: str, offset: float, pcm: bytes) -> None:
        self.bytes += len(pcm)

    async def finish(self, speaker: str) -> None:
        return None


class _LagMeter:
    """A ticker that asks to sleep 10 ms and records by how much it overslept."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.recording = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            if self.recording:
                self.lags.append(loop.time() - before - TICK)


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def serve(root: Path) -> None:
    """Serve the registry for the bench on 127.0.0.1; print `LISTENING <port>`; stop on SIGTERM."""
    store = AudioStore(root)
    sink = _CountingSink()
    registry = UplinkRegistry(store, sink_factory=lambda visit_id: sink)
    meter = _LagMeter()
    ticker = asyncio.create_task(meter.run())
    window: dict[str, float] = {}

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        key = UplinkKey(int(body["visit_id"]), int(body["participant_id"]))
        started = time.perf_counter()
        try:
            answer = await registry.accept(
                key, str(body["speaker"]), datetime.fromisoformat(body["visit_started_at"]), body["sdp"]
            )
        except UplinkError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"sdp": answer, "accept_seconds": time.perf_counter() - started})

    async def start(request: web.Request) -> web.Response:
        meter.lags.clear()
        meter.recording = True
        window.update(cpu=time.process_time(), wall=time.perf_counter(), fed=sink.bytes)
        return web.json_response({"active": registry.active()})

    async def stop(request: web.Request) -> web.Response:
        meter.recording = False
        return web.json_response(
            {
                "cpu": time.process_time() - window["cpu"],
                "wall": time.perf_counter() - window["wall"],
                "audio_seconds": (sink.bytes - window["fed"]) / 2 / SAMPLE_RATE,
                "lags": meter.lags,
                "rss_mb": _rss_mb(),
                "active": registry.active(),
            }
        )

    async def close(request: web.Request) -> web.Response:
        visit_ids = [int(v) for v in (await request.json())["visit_ids"]]
        for visit_id in visit_ids:
            await registry.close_visit(visit_id)
        parts = [
            {
                "visit": p.visit_id,
                "participant": p.participant_id,
                "samples": p.samples,
                "filled": p.filled_samples,
            }
            for visit_id in visit_ids
            for p in await asyncio.to_thread(store.parts, visit_id)
        ]
        return web.json_response({"parts": parts, "fed_bytes": sink.bytes, "active": registry.active()})

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/offer", offer)
    app.router.add_post("/window/start", start)
    app.router.add_post("/window/stop", stop)
    app.router.add_post("/close", close)
    try:
        await serve_until_signalled(app, lambda runner: web.TCPSite(runner, "127.0.0.1", 0, backlog=256))
    finally:
        await registry.close()
        store.close()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


# --- the clients ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Speech:
    """The clip, and its Opus packets encoded once by aiortc's own encoder (as every client would)."""

    pcm: bytes  # 48 kHz mono s16
    packets: tuple[tuple[bytes, int], ...]  # (Opus payload, RTP timestamp at 48 kHz)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / 48_000

    @classmethod
    def encode(cls, pcm: bytes) -> Speech:
        encoder = OpusEncoder()
        packets = []
        for start in range(0, len(pcm) - 2 * FRAME + 1, 2 * FRAME):
            frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
            frame.sample_rate, frame.pts, frame.time_base = 48_000, start // 2, fractions.Fraction(1, 48_000)
            frame.planes[0].update(pcm[start : start + 2 * FRAME])
            payloads, timestamp = encoder.encode(frame)
            packets += [(payload, timestamp) for payload in payloads]
        return cls(pcm, tuple(packets))


class SpeechTrack(MediaStreamTrack):
    """Sends the clip's Opus packets once, paced in real time, like a browser's microphone.

    Pre-encoded so that 40 clients do not spend the shared cores encoding the same clip 40 times;
    aiortc's sender packetizes, encrypts and sends them as it would freshly encoded audio.
    """

    kind = "audio"

    def __init__(self, speech: Speech) -> None:
        super().__init__()
        self._packets = speech.packets
        self._index = 0
        self._start: float | None = None
        self.finished = asyncio.Event()

    async def recv(self) -> av.Packet[av.stream.Stream]:
        if self._index >= len(self._packets):
            self.finished.set()
            self.stop()
            raise MediaStreamError
        payload, timestamp = self._packets[self._index]
        self._index += 1
        self._start = self._start or time.monotonic()
        await asyncio.sleep(max(0.0, self._start + timestamp / 48_000 - time.monotonic()))
        packet = av.Packet(payload)
        packet.pts, packet.time_base = timestamp, fractions.Fraction(1, 48_000)
        return packet


@dataclass(frozen=True, slots=True)
class Round:
    """One N: what the server and the clients measured."""

    uplinks: int
    window: float
    server_cpu: float
    audio_seconds: float  # audio the server wrote and fed during the window, all uplinks together
    client_cpu: float
    lags: tuple[float, ...]
    accept: tuple[float, ...]
    join: tuple[float, ...]
    sent_samples: int  # per uplink, at 16 kHz
    received: tuple[int, ...]  # per uplink: samples decoded (not counting filled silence)
    filled: tuple[int, ...]  # per uplink: samples of silence standing in for lost packets
    rss_mb: float
    load: str  # the machine's 1-minute load average as the round started (other work shows here)
    error: str | None = None

    @property
    def cpu_per_uplink(self) -> float:
        """Server CPU seconds per second of audio taken in: the share of a core one live uplink costs."""
        return self.server_cpu / self.audio_seconds if self.audio_seconds else 0.0

    @property
    def keeping_up(self) -> float:
        """Audio taken in over audio sent during the window (below 1: the server fell behind)."""
        return self.audio_seconds / (self.uplinks * self.window)

    @property
    def lost_frames(self) -> int:
        return sum(f // (SAMPLE_RATE // 50) for f in self.filled)


@dataclass(frozen=True, slots=True)
class UplinkBench:
    source_seconds: float
    rounds: list[Round]


def _speech(tmp: Path, quick: bool) -> Speech:
    """Speech from espeak-ng at 48 kHz mono, led by 0.5 s of silence, as raw s16 PCM."""
    text = SPEECH.split(". ")[0] if quick else SPEECH
    path = make_speech_wav(tmp / "speech.wav", text)
    with wave.open(str(path), "rb") as w:
        return Speech.encode(w.readframes(w.getnframes()))


@contextlib.asynccontextmanager
async def _server(root: Path, log: Path) -> AsyncIterator[str]:
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.uplinks", "--serve", str(root),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            if not line.startswith(b"LISTENING "):
                raise RuntimeError(f"the uplink server did not start; see {log}")
            yield f"http://127.0.0.1:{int(line.split()[1])}"
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _post(http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None = None) -> Any:
    async with http.post(path, json=body or {}) as resp:
        data = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {data}")
        return data


async def _connect(
    http: aiohttp.ClientSession, index: int, speech: Speech, started: datetime
) -> tuple[RTCPeerConnection, SpeechTrack, float, float]:
    """Open uplink `index` (visit index // 2); return the peer, its track, accept() and join time."""
    t0 = time.perf_counter()
    track = SpeechTrack(speech)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    body = {
        "visit_id": index // 2 + 1,
        "participant_id": index + 1,
        "speaker": "worker" if index % 2 else "client",
        "visit_started_at": started.isoformat(),
        "sdp": pc.localDescription.sdp,
    }
    answer = await _post(http, "/offer", body)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    connected = asyncio.Event()
    pc.on("connectionstatechange", lambda: connected.set() if pc.connectionState == "connected" else None)
    if pc.connectionState != "connected":
        await asyncio.wait_for(connected.wait(), 30)
    return pc, track, float(answer["accept_seconds"]), time.perf_counter() - t0


async def run_round(n: int, speech: Speech, tmp: Path) -> Round:
    """Start a fresh server, connect n uplinks at once, measure while all send, then close."""
    load = f"{os.getloadavg()[0]:.1f}"
    sent = len(speech.pcm) // 2 // 3  # 48 kHz -> 16 kHz
    source = speech.seconds
    async with (
        _server(tmp / f"audio-{n}", tmp / f"server-{n}.log") as base,
        aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(total=120)) as http,
    ):
        started = datetime.now(UTC)
        peers = await asyncio.gather(*(_connect(http, i, speech, started) for i in range(n)))
        connected_at = time.monotonic()
        await asyncio.sleep(1.0)
        await _post(http, "/window/start")
        client_cpu = time.process_time()
        # Measure while every uplink is sending: stop 1 s before the first one runs out.
        await asyncio.sleep(max(1.0, source - (time.monotonic() - connected_at) - 1.5))
        stats = await _post(http, "/window/stop")
        client_cpu = time.process_time() - client_cpu
        await asyncio.wait_for(asyncio.gather(*(t.finished.wait() for _, t, _, _ in peers)), source + 30)
        await asyncio.sleep(0.5)  # the last packets in flight
        await asyncio.gather(*(pc.close() for pc, _, _, _ in peers))
        closed = await _post(http, "/close", {"visit_ids": sorted({i // 2 + 1 for i in range(n)})})
    parts = closed["parts"]
    return Round(
        uplinks=n,
        window=float(stats["wall"]),
        server_cpu=float(stats["cpu"]),
        audio_seconds=float(stats["audio_seconds"]),
        client_cpu=client_cpu,
        lags=tuple(stats["lags"]),
        accept=tuple(a for _, _, a, _ in peers),
        join=tuple(j for _, _, _, j in peers),
        sent_samples=sent,
        received=tuple(int(p["samples"]) - int(p["filled"]) for p in parts),
        filled=tuple(int(p["filled"]) for p in parts),
        rss_mb=float(stats["rss_mb"]),
        load=load,
        error=None if len(parts) == n else f"{len(parts)} parts for {n} uplinks",
    )


async def _run(quick: bool) -> UplinkBench:
    with tempfile.TemporaryDirectory(prefix="lastmile-uplinks-") as tmp_name:
        tmp = Path(tmp_name)
        speech = _speech(tmp, quick)
        source = speech.seconds
        rounds = []
        for n in COUNTS:
            say(f"[uplinks] N={n}: {n} aiortc clients sending {source:.1f} s of speech")
            r = await run_round(n, speech, tmp)
            say(
                f"  server CPU {100 * r.cpu_per_uplink:.2f}% of a core per uplink, kept up "
                f"{100 * r.keeping_up:.0f}%; loop lag p50 "
                f"{_ms(r.lags, 50)} / p99 {_ms(r.lags, 99)} ms; frames lost {r.lost_frames}"
            )
            rounds.append(r)
        return UplinkBench(source, rounds)


def run(quick: bool = False) -> UplinkBench:
    """Run every N in turn (about 1.5 minutes; `quick`: a shorter clip, about 40 s)."""
    return asyncio.run(_run(quick))


def _ms(values: tuple[float, ...], pct: float) -> str:
    return f"{1000 * percentile(values, pct):.1f}" if values else "-"


def markdown(result: UplinkBench) -> list[str]:
    out = [
        "## Audio uplinks",
        "",
        "`visits.uplink.UplinkRegistry` and `visits.audio.AudioStore` (real WAV files in a temporary",
        "folder, a sink that only counts) in their own process; N aiortc client peers in the bench",
        f"process, each sending the same {result.source_seconds:.1f} s espeak-ng speech clip as Opus",
        "(48 kHz, 20 ms frames encoded once by aiortc's encoder, paced in real time, packetized and",
        "encrypted per peer by aiortc), two uplinks per visit, all connected at once",
        "over loopback (host ICE candidates, no STUN). Measured while every uplink is sending.",
        "**CPU per uplink**: the server process's CPU time in the window (all threads: aiortc's",
        "decoder threads, the event loop, the audio writer) per second of audio it wrote in that",
        "window, i.e. the share of one core a live uplink costs (fixed costs such as the lag ticker",
        "and the HTTP endpoint are spread over N, so N = 1 reads high). **Server CPU**: the",
        "process's CPU time over wall time. **Kept up**: audio written in the window over audio",
        "sent in it (below 100%: the server fell behind and caught up later, if at all).",
        "**Loop lag**: how much a 10 ms `asyncio.sleep` in the server overslept.",
        "**Frames lost**: 20 ms frames that never reached the WAV (the server fills them with",
        "silence, so they show as filled samples). **Received**: decoded samples over the samples",
        "sent, lowest uplink; the last ~0.1 s of each stream stays in aiortc's jitter buffer at",
        "hang-up, so that much short of 100% is the ceiling. **accept()**: answering the offer;",
        "**join**: from making the offer to `connected` in the client, all N at once. **Load**: the",
        "machine's 1-minute load average as the round began (2 cores; other work raises it).",
        "",
        "| uplinks | CPU per uplink | server CPU | kept up | loop lag p50 / p99 / max ms | frames lost "
        "| received (min) | accept() p50 / max ms | join p50 / max ms | server RSS | client CPU | load |",
        "| ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for r in result.rounds:
        if r.error:
            out.append(f"| {r.uplinks} | failed: {r.error} | | | | | | | | | | |")
            continue
        received = min(r.received) / r.sent_samples if r.received else 0.0
        out.append(
            f"| {r.uplinks} | {100 * r.cpu_per_uplink:.2f}% | {100 * r.server_cpu / r.window:.0f}% "
            f"| {100 * r.keeping_up:.0f}% "
            f"| {_ms(r.lags, 50)} / {_ms(r.lags, 99)} / {_ms(r.lags, 100)} | {r.lost_frames} "
            f"| {100 * received:.1f}% | {_ms(r.accept, 50)} / {_ms(r.accept, 100)} "
            f"| {_ms(r.join, 50)} / {_ms(r.join, 100)} | {r.rss_mb:.0f} MB "
            f"| {100 * r.client_cpu / r.window:.0f}% | {r.load} |"
        )
    out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.uplinks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a shorter clip")
    parser.add_argument("--serve", type=Path, metavar="AUDIO_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        return 0
    print("\n".join(markdown(run(quick=args.quick))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
