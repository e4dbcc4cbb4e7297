"""Uplinks end to end: real aiortc client peers against the real registry and audio store."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import json
import math
import time
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aioice.ice
import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.visits.audio_fixtures import concat_wavs, correlation, header_sizes, make_speech_wav, read_wav
from tests.visits.peers import ClientUplink, RecordingSink, offer_for, open_uplink, wait_for
from visits.audio import AudioPart, AudioStore
from visits.uplink import MAX_OFFER_BYTES, UplinkError, UplinkKey, UplinkRegistry

CLIENT = UplinkKey(visit_id=1, participant_id=11)
WORKER = UplinkKey(visit_id=1, participant_id=10)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 3.8 s: 0.5 s of silence, then a sentence; 48 kHz mono like a browser's microphone."""
    return make_speech_wav(tmp_path_factory.mktemp("speech") / "speech.wav")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AudioStore]:
    s = AudioStore(tmp_path / "audio")
    yield s
    s.close()


@pytest.fixture
def sinks() -> dict[int, RecordingSink]:
    """One recording sink per visit, made when the visit's first uplink arrives."""
    return {}


@pytest.fixture
async def registry(store: AudioStore, sinks: dict[int, RecordingSink]) -> AsyncIterator[UplinkRegistry]:
    reg = UplinkRegistry(store, sink_factory=lambda visit_id: sinks.setdefault(visit_id, RecordingSink()))
    yield reg
    await reg.close()


def assert_contiguous(sink: RecordingSink, speaker: str, parts: list[AudioPart]) -> None:
    """Each part's chunks start at the part's offset, follow on without gaps, and add up to the part."""
    chunks = [(offset, n) for who, offset, n in sink.chunks if who == speaker]
    for part in parts:
        mine = [(o, n) for o, n in chunks if part.offset - 1e-6 <= o < part.end]
        assert mine and mine[0][0] == pytest.approx(part.offset)
        for (o1, n1), (o2, _) in itertools.pairwise(mine):
            assert o2 == pytest.approx(o1 + n1 / 16000, abs=1e-6)
        assert sum(n for _, n in mine) == part.samples
    offsets = [o for o, _ in chunks]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), "offsets only increase"


async def stream_to_end(client: ClientUplink, registry: UplinkRegistry) -> None:
    """Let the client play its whole file, hang up, and wait for the server to close its side."""
    await client.wait_ended()
    await asyncio.sleep(0.3)  # the last packets in flight
    await client.close()
    await wait_for(lambda: registry.active() == 0, what="the server to notice the hang-up")


async def test_uplink_writes_the_speech_and_is_readable_while_it_grows(
    registry: UplinkRegistry, store: AudioStore, sinks: dict[int, RecordingSink], speech_wav: Path
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    before = time.monotonic()
    client = await open_uplink(registry, CLIENT, speech_wav, visit_started_at=started, sendonly=False)
    assert time.monotonic() - before < 2.0, "offer, answer and ICE on loopback"
    assert registry.active() == 1

    # While the peer is still sending, the file on disk is already a consistent WAV (kill-safety).
    path = store.root / "1" / "11-1.wav"
    await asyncio.sleep(1.5)
    riff, data, size = header_sizes(path)
    assert riff == data + 36 and 44 + data <= size
    assert 0.5 <= read_wav(path).duration <= 1.6
    assert not json.loads(path.with_suffix(".json").read_text())["finished"]

    await stream_to_end(client, registry)
    (part,) = store.parts(1)
    assert part.finished and part.speaker == "client" and part.part == 1 and part.participant_id == 11
    assert 5.0 < part.offset < 5.0 + (time.monotonic() - before)
    assert part.filled_samples == 0
    sidecar = json.loads(part.sidecar.read_text())
    assert sidecar["samples"] == part.samples and sidecar["offset"] == part.offset

    got, sent = read_wav(part.path), read_wav(speech_wav)
    assert (got.rate, got.channels) == (16000, 1)
    assert got.duration == part.duration == pytest.approx(sent.duration, abs=0.25)
    speech = got.rms(0.6, sent.duration - 0.2)
    assert speech > 1000 and got.rms(0.0, 0.4) < speech / 20, "0.5 s of silence, then speech"
    assert correlation(got.envelope(), sent.envelope()) > 0.85, "the same speech, in time"

    sink = sinks[1]
    assert_contiguous(sink, "client", [part])
    assert sink.finished == []
    await registry.close_visit(1)
    assert sink.finished == ["client"]


async def test_rejoin_replaces_the_peer_and_starts_a_later_part(
    registry: UplinkRegistry, store: AudioStore, sinks: dict[int, RecordingSink], speech_wav: Path
) -> None:
    started = datetime.now(UTC)
    first = await open_uplink(registry, CLIENT, speech_wav, visit_started_at=started)
    await asyncio.sleep(1.5)
    # The browser lost its network and rebuilt its peer; the server has not noticed the old one die.
    second = await open_uplink(registry, CLIENT, speech_wav, visit_started_at=started)
    await wait_for(lambda: registry.active() == 1, what="the replaced peer to be closed")
    await wait_for(lambda: first.pc.connectionState == "closed", what="the old peer to be closed")

    await stream_to_end(second, registry)
    one, two = store.parts(1)
    assert (one.part, two.part) == (1, 2) and one.finished and two.finished
    assert 1.0 < one.duration < 1.8 and read_wav(one.path).duration == one.duration
    assert read_wav(one.path).rms(0.6, one.duration) > 1000, "part 1 kept the speech before the drop"
    assert two.offset >= one.end and two.offset > one.offset + 1.5
    assert two.duration == pytest.approx(read_wav(speech_wav).duration, abs=0.25)
    assert_contiguous(sinks[1], "client", [one, two])


async def test_two_offers_at_once_for_one_participant_leave_one_peer(
    registry: UplinkRegistry, store: AudioStore
) -> None:
    first, second = await offer_for(), await offer_for()
    now = datetime.now(UTC)
    results = await asyncio.gather(
        registry.accept(CLIENT, "client", now, first.localDescription.sdp),
        registry.accept(CLIENT, "client", now, second.localDescription.sdp),
        return_exceptions=True,
    )
    assert isinstance(results[0], UplinkError) and "replaced" in str(results[0])
    assert isinstance(results[1], str) and results[1].startswith("v=0")
    await wait_for(lambda: registry.active() == 1, what="the first peer to be closed")
    await registry.close_participant(CLIENT)
    assert registry.active() == 0 and store.parts(1) == [], "no audio ever arrived: no part"
    await first.close()
    await second.close()


async def test_a_peer_that_never_connects_is_closed(store: AudioStore) -> None:
    registry = UplinkRegistry(store, first_frame_timeout=0.5)
    browser = await offer_for()
    await registry.accept(CLIENT, "client", datetime.now(UTC), browser.localDescription.sdp)
    assert registry.active() == 1  # the browser never applies the answer
    await wait_for(lambda: registry.active() == 0, what="the silent peer to be closed")
    assert store.parts(1) == []
    await registry.close()
    await browser.close()


async def test_a_vanished_browser_is_closed_when_ice_fails(
    registry: UplinkRegistry, store: AudioStore, speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aioice's consent checks, sped up: 3 missed answers 0.2 s apart instead of 6 at 5 s.
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)
    client = await open_uplink(registry, CLIENT, speech_wav, visit_started_at=datetime.now(UTC))
    await asyncio.sleep(1.0)
    # The phone walks out of Wi-Fi: its packets stop, with no DTLS goodbye.
    ice = client.pc.getSenders()[0].transport.transport
    await ice.stop()
    await wait_for(lambda: registry.active() == 0, within=10, what="the server to give up on the peer")
    (part,) = store.parts(1)
    assert part.finished and 0.8 < part.duration < 2.5
    await client.close()


class ToneWithDropout(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames, paced in real time, that goes silent on the wire for a while."""

    kind = "audio"

    def __init__(self, seconds: float, drop_at: float, drop_for: float) -> None:
        super().__init__()
        self._frames = int(seconds * 50)
        self._drop = range(int(drop_at * 50), int((drop_at + drop_for) * 50))
        self._index = 0
        self._start: float | None = None
        wave = [int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(48000)]
        self._second = array("h", wave + wave).tobytes()

    async def recv(self) -> av.AudioFrame:
        if self._index in self._drop:
            self._index = self._drop.stop  # nothing is sent for the dropped frames: a jump in time
        if self._index >= self._frames:
            self.stop()
            raise MediaStreamError
        pts = self._index * 960
        self._index += 1
        self._start = self._start or time.monotonic()
        await asyncio.sleep(max(0.0, self._start + pts / 48000 - time.monotonic()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.sample_rate, frame.pts, frame.time_base = 48000, pts, fractions.Fraction(1, 48000)
        start = (pts % 48000) * 2
        frame.planes[0].update(self._second[start : start + 1920])
        return frame


async def test_audio_that_never_arrived_becomes_silence_on_the_timeline(
    registry: UplinkRegistry, store: AudioStore, sinks: dict[int, RecordingSink]
) -> None:
    track = ToneWithDropout(seconds=2.0, drop_at=0.8, drop_for=0.5)
    client = ClientUplink(await offer_for(track), track)
    track.on("ended", client.ended.set)
    answer = await registry.accept(CLIENT, "client", datetime.now(UTC), client.pc.localDescription.sdp)
    await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await stream_to_end(client, registry)
    (part,) = store.parts(1)
    assert part.filled_samples / 16000 == pytest.approx(0.5, abs=0.05)
    assert part.duration == pytest.approx(2.0, abs=0.15), "the gap keeps its length"
    pcm = read_wav(part.path)
    assert pcm.rms(0.1, 0.7) > 3000 and pcm.rms(1.4, 1.8) > 3000
    assert pcm.rms(0.9, 1.2) < 50, "silence where nothing arrived"
    assert_contiguous(sinks[1], "client", [part])


async def test_close_visit_closes_its_peers_and_finishes_its_speakers(
    registry: UplinkRegistry,
    store: AudioStore,
    sinks: dict[int, RecordingSink],
    speech_wav: Path,
    tmp_path: Path,
) -> None:
    sinks[2] = RecordingSink(fail_after=10)  # visit 2's transcriber breaks; its audio must still be kept
    long_speech = concat_wavs(tmp_path / "long.wav", speech_wav, speech_wav)
    now = datetime.now(UTC)
    clients = await asyncio.gather(
        open_uplink(registry, CLIENT, long_speech, visit_started_at=now),
        open_uplink(registry, WORKER, long_speech, speaker="worker", visit_started_at=now),
        open_uplink(registry, UplinkKey(2, 20), long_speech, visit_started_at=now),
    )
    assert registry.active() == 3
    await asyncio.sleep(1.0)

    await registry.close_visit(1)
    assert registry.active() == 1
    assert sinks[1].finished == ["client", "worker"]
    parts = store.parts(1)
    assert [(p.participant_id, p.finished) for p in parts] == [(10, True), (11, True)]
    assert all(0.5 < p.duration < 2.0 for p in parts)
    await wait_for(lambda: clients[0].pc.connectionState == "closed", what="the client to see the close")

    await asyncio.sleep(0.5)
    await registry.close()
    assert registry.active() == 0
    (other,) = store.parts(2)
    assert other.finished and other.duration > 1.2, "audio kept after the sink failed"
    assert len(sinks[2].chunks) == 10 and sinks[2].finished == [], "a failed sink gets no more calls"
    with pytest.raises(RuntimeError):
        await registry.accept(CLIENT, "client", now, clients[0].pc.localDescription.sdp)
    for c in clients:
        await c.close()


async def closed_sdp(pc: RTCPeerConnection) -> str:
    """Close the peer and return the SDP of its local description."""
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


async def offered_sdp(pc: RTCPeerConnection) -> str:
    """Set a fresh local offer on the peer (as it is now), close it, and return the offer's SDP."""
    await pc.setLocalDescription(await pc.createOffer())
    return await closed_sdp(pc)


async def video_offer() -> str:
    pc = await offer_for()
    pc.addTransceiver("video", direction="sendonly")
    return await offered_sdp(pc)


async def plain_offer() -> str:
    return await closed_sdp(await offer_for())


async def text_offer() -> str:
    return "hello"


async def malformed_offer() -> str:
    return "v=0\r\nm=audio nine RTP/AVP 0\r\n"


async def datachannel_offer() -> str:
    pc = RTCPeerConnection()
    pc.createDataChannel("chat")
    return await offered_sdp(pc)


async def recvonly_offer() -> str:
    sdp = await plain_offer()
    return sdp.replace("a=sendonly", "a=recvonly")


async def oversized_offer() -> str:
    sdp = await plain_offer()
    return sdp + "a=x-padding:" + "x" * MAX_OFFER_BYTES + "\r\n"


async def garbled_offer() -> str:
    sdp = await plain_offer()
    return sdp.replace("a=setup:actpass", "a=setup:sideways")


async def no_ice_offer() -> str:
    sdp = await plain_offer()
    return "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith("a=ice-pwd"))


async def video_codec_only_offer() -> str:
    sdp = await plain_offer()
    return (
        sdp.replace("opus/48000/2", "VP8/90000")
        .replace("PCMU/8000", "VP8/90000")
        .replace("PCMA/8000", "VP8/90000")
    )


@pytest.mark.parametrize(
    ("make_offer", "message"),
    [
        (text_offer, "not SDP"),
        (malformed_offer, "not valid SDP"),
        (garbled_offer, "not valid SDP"),
        (oversized_offer, "larger than"),
        (video_offer, "audio only"),
        (datachannel_offer, "exactly one audio"),
        (recvonly_offer, "must send"),
        (no_ice_offer, "ICE credentials"),
        (video_codec_only_offer, "no audio codec"),
    ],
    ids=["text", "malformed", "garbled", "oversized", "video", "datachannel", "recvonly", "no-ice", "codec"],
)
async def test_bad_offers_are_refused_with_a_reason(
    registry: UplinkRegistry, store: AudioStore, make_offer: Callable[[], Awaitable[str]], message: str
) -> None:
    offer = await make_offer()
    with pytest.raises(UplinkError, match=message):
        await registry.accept(CLIENT, "client", datetime.now(UTC), offer)
    assert registry.active() == 0 and store.parts(1) == []
