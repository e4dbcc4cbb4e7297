"""The server's side of each browser's audio-only uplink: one aiortc peer per participant.

A consenting browser opens an RTCPeerConnection that only sends audio. The registry answers its offer
(recvonly), resamples every received frame to 16 kHz mono s16, writes it to the participant's current
audio part and hands it, with its offset from the visit's start, to the visit's `AudioSink`. A rejoin
replaces the participant's peer and starts a new part. Peers that fail or close are closed and their
parts finished; video is refused at the offer, so it is never decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Protocol

import av
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from visits.audio import SAMPLE_RATE, SAMPLE_WIDTH, AudioStore, PartWriter

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 20_000
SUPPORTED_AUDIO = {"opus", "pcmu", "pcma"}
# A gap in the sender's timestamps shorter than this is resampler jitter, not lost audio.
MIN_GAP_SAMPLES = SAMPLE_RATE // 100
# A jump in the sender's timestamps beyond this is a broken clock, not a silence to fill.
MAX_GAP_SECONDS = 600.0
# How long a closing peer's already decoded audio may take to reach the part before it is cut off.
DRAIN_SECONDS = 2.0


class UplinkError(ValueError):
    """An offer the server will not answer; the message says why (the web layer answers 4xx)."""


@dataclass(frozen=True)
class UplinkKey:
    visit_id: int
    participant_id: int


class AudioSink(Protocol):
    """What the transcription side implements to receive a visit's audio as it arrives.

    One sink per visit. Chunks (usually 20 ms) follow on without gaps within a part, audio that
    never arrived included as silence; a speaker's offsets never go back, and a rejoin's part starts
    at a later offset. `feed` is awaited on the event loop in the uplink's path: it must return
    quickly (queue the work). A sink that raises gets no more calls for the visit; the audio
    store still has everything.
    """

    async def feed(self, speaker: str, offset: float, pcm: bytes) -> None:
        """Take 16 kHz mono s16 PCM that starts `offset` seconds after the visit's start."""

    async def finish(self, speaker: str) -> None:
        """Learn that no more audio will come for `speaker` in this visit."""


@dataclass(eq=False)
class _Visit:
    sink: AudioSink | None
    speakers: set[str] = field(default_factory=set)
    ends: dict[str, float] = field(default_factory=dict)  # speaker -> offset after the last sample fed


@dataclass(eq=False)
class _Uplink:
    key: UplinkKey
    speaker: str
    visit_started_at: datetime
    visit: _Visit
    pc: RTCPeerConnection
    task: asyncio.Task[None] | None = None
    writer: PartWriter | None = None
    closing: asyncio.Task[None] | None = None


def check_offer(sdp: str) -> SessionDescription:
    """Parse a browser's uplink offer and refuse anything but one audio stream the server can take."""
    if len(sdp.encode("utf-8", "surrogatepass")) > MAX_OFFER_BYTES:
        raise UplinkError(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    if not sdp.startswith("v=0"):
        raise UplinkError("the offer is not SDP (it must start with v=0)")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # the parser reports bad input with asserts, KeyError, ValueError...
        raise UplinkError(f"the offer is not valid SDP ({type(exc).__name__})") from exc
    kinds = [m.kind for m in parsed.media]
    if "video" in kinds:
        raise UplinkError("the uplink takes audio only; the offer carries video")
    if kinds.count("audio") != 1 or len(kinds) != 1:
        raise UplinkError(f"the offer must have exactly one audio m-line and nothing else, not {kinds}")
    media = parsed.media[0]
    if media.direction not in ("sendonly", "sendrecv"):
        raise UplinkError(f"the offer's audio is {media.direction}; it must send")
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise UplinkError("the offer has no ICE credentials")
    if media.dtls is None or not media.dtls.fingerprints:
        raise UplinkError("the offer has no DTLS fingerprint")
    if not media.rtcp_mux:
        raise UplinkError("the offer does not multiplex RTCP (a=rtcp-mux)")
    codecs = {c.mimeType.split("/", 1)[1].lower() for c in media.rtp.codecs}
    if not codecs & SUPPORTED_AUDIO:
        raise UplinkError(
            f"the offer has no audio codec the server takes (opus, PCMU, PCMA): {sorted(codecs)}"
        )
    return parsed


class UplinkRegistry:
    """The server's uplink peers, one per participant of a visit; created and closed by the app.

    Args:
        store: where the audio parts go.
        ice_servers: the server peer's own STUN/TURN servers. `None` means none (host candidates
            only), not aiortc's default public STUN server.
        sink_factory: called once per visit (with its id) on the visit's first uplink; returns the
            sink that receives the visit's audio, or None.
        clock: the time used for part offsets; must be comparable with `visit_started_at`.
        first_frame_timeout: seconds an accepted peer may take to deliver audio before it is closed.
    """

    def __init__(
        self,
        store: AudioStore,
        *,
        ice_servers: list[RTCIceServer] | None = None,
        sink_factory: Callable[[int], AudioSink | None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        first_frame_timeout: float = 30.0,
    ) -> None:
        self._store = store
        self._ice_servers = list(ice_servers or [])
        self._sink_factory = sink_factory
        self._clock = clock
        self._first_frame_timeout = first_frame_timeout
        self._current: dict[UplinkKey, _Uplink] = {}  # each participant's newest peer
        self._peers: set[_Uplink] = set()  # every peer not yet fully closed, replaced ones included
        self._visits: dict[int, _Visit] = {}
        self._closed = False

    def active(self) -> int:
        """Return how many peers the server holds (open, or closing and finishing their parts)."""
        return len(self._peers)

    async def accept(self, key: UplinkKey, speaker: str, visit_started_at: datetime, offer_sdp: str) -> str:
        """Answer a browser's audio-only offer and return the answer SDP (with all ICE candidates).

        A second offer for the same key replaces the first peer; the new peer's audio goes to a new part.
        Raises UplinkError for an offer the server refuses.
        """
        if self._closed:
            raise RuntimeError("the uplink registry is closed")
        check_offer(offer_sdp)
        visit = self._visits.get(key.visit_id)
        if visit is None:
            sink = self._sink_factory(key.visit_id) if self._sink_factory else None
            visit = self._visits[key.visit_id] = _Visit(sink)
        visit.speakers.add(speaker)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers))
        up = _Uplink(key, speaker, visit_started_at, visit, pc)
        # Registered before the first await, so a concurrent rejoin or close_visit sees this peer.
        previous = self._current.get(key)
        self._current[key] = up
        self._peers.add(up)
        if previous is not None:
            log.info(
                "uplink replaced", extra={"visit_id": key.visit_id, "participant_id": key.participant_id}
            )
            self._shut(previous)

        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                log.info(
                    "uplink peer %s",
                    pc.connectionState,
                    extra={"visit_id": key.visit_id, "participant_id": key.participant_id},
                )
                self._retire(up)

        pc.on("connectionstatechange", on_state)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            transceiver = pc.getTransceivers()[0]
            transceiver.direction = "recvonly"
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, InvalidAccessError, InvalidStateError, OperationError) as exc:
            await self._retire(up)
            if up.closing is not None and isinstance(exc, InvalidStateError):
                raise UplinkError("the uplink was closed or replaced while it was being set up") from exc
            raise UplinkError(f"the offer could not be answered: {exc}") from exc
        except BaseException:
            self._retire(up)  # closes in the background: this may be a cancellation
            raise
        if up.closing is not None:
            raise UplinkError("the uplink was closed or replaced while it was being set up")
        up.task = asyncio.create_task(self._pump(up, transceiver.receiver.track))
        return pc.localDescription.sdp

    async def close_participant(self, key: UplinkKey) -> None:
        """Close the participant's peer (if any) and finish its part; the participant may rejoin."""
        up = self._current.get(key)
        if up is not None:
            self._retire(up)
        await self._wait_closed(lambda other: other.key == key)

    async def close_visit(self, visit_id: int) -> None:
        """Close the visit's peers, finish their parts and tell the sink each speaker has finished."""
        for up in [up for key, up in self._current.items() if key.visit_id == visit_id]:
            self._retire(up)
        await self._wait_closed(lambda up: up.key.visit_id == visit_id)
        visit = self._visits.pop(visit_id, None)
        if visit is not None and visit.sink is not None:
            sink = visit.sink
            # A transcriber's finish may wait for the last utterance: let the speakers finish together.
            results = await asyncio.gather(
                *(sink.finish(speaker) for speaker in sorted(visit.speakers)), return_exceptions=True
            )
            for result in results:
                if isinstance(result, Exception):
                    log.error("audio sink failed to finish", exc_info=result, extra={"visit_id": visit_id})

    async def close(self) -> None:
        """Close every peer and finish every visit (the app's cleanup)."""
        self._closed = True
        visits = {up.key.visit_id for up in self._peers} | set(self._visits)
        await asyncio.gather(*(self.close_visit(visit_id) for visit_id in visits))

    async def _wait_closed(self, which: Callable[[_Uplink], bool]) -> None:
        """Wait for the matching peers that are closing, including those replaced or failed earlier."""
        await asyncio.gather(*(up.closing for up in list(self._peers) if up.closing and which(up)))

    def _retire(self, up: _Uplink) -> asyncio.Task[None]:
        """Forget the peer if it is still the participant's current one, and close it once."""
        if self._current.get(up.key) is up:
            del self._current[up.key]
        return self._shut(up)

    def _shut(self, up: _Uplink) -> asyncio.Task[None]:
        if up.closing is None:
            up.closing = asyncio.create_task(self._close_uplink(up))
        return up.closing

    async def _close_uplink(self, up: _Uplink) -> None:
        try:
            await self._finish_uplink(up)
        finally:
            self._peers.discard(up)

    async def _finish_uplink(self, up: _Uplink) -> None:
        await up.pc.close()  # ends the track, so the pump drains what was decoded and returns
        if up.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(up.task), DRAIN_SECONDS)
            except TimeoutError:
                up.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await up.task
            except Exception:
                log.exception("uplink pump failed", extra={"visit_id": up.key.visit_id})
        if up.writer is not None:
            part = await up.writer.close()
            log.info(
                "audio part finished",
                extra={
                    "visit_id": part.visit_id,
                    "participant_id": part.participant_id,
                    "part": part.part,
                    "seconds": round(part.duration, 2),
                    "filled_seconds": round(part.filled_samples / SAMPLE_RATE, 2),
                },
            )

    async def _pump(self, up: _Uplink, track: MediaStreamTrack) -> None:
        """Write the track's audio to a new part and feed the sink until the track ends."""
        try:
            await self._receive(up, track)
        finally:
            self._retire(up)

    async def _receive(self, up: _Uplink, track: MediaStreamTrack) -> None:
        try:
            frame = await asyncio.wait_for(track.recv(), self._first_frame_timeout)
        except TimeoutError:
            log.warning("uplink sent no audio in time", extra={"visit_id": up.key.visit_id})
            return
        except MediaStreamError:
            return
        started_at = self._clock()
        offset = (started_at - up.visit_started_at).total_seconds()
        if offset < 0:
            log.warning("uplink started before its visit", extra={"visit_id": up.key.visit_id})
        # Never before the speaker's last part ended (a rejoin racing the old peer's last frames).
        offset = max(offset, up.visit.ends.get(up.speaker, 0.0))
        writer = up.writer = await self._store.open_part(
            up.key.visit_id, up.key.participant_id, up.speaker, offset=offset, started_at=started_at
        )
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        first_pts: int | None = None
        while True:
            if not isinstance(frame, av.AudioFrame):
                raise TypeError(f"an audio track delivered {type(frame).__name__}")
            tb = frame.time_base
            if frame.pts is not None and tb is not None:
                if first_pts is None:
                    first_pts = frame.pts
                # The sender's clock says where this frame belongs: fill what never arrived with silence.
                # (Integer arithmetic: Fractions cost several microseconds a frame on the event loop.)
                due = (frame.pts - first_pts) * tb.numerator * SAMPLE_RATE // tb.denominator
                gap = due - writer.samples
                if gap > MAX_GAP_SECONDS * SAMPLE_RATE or gap < -SAMPLE_RATE:
                    log.warning("uplink timestamps jumped", extra={"visit_id": up.key.visit_id, "gap": gap})
                    first_pts = frame.pts - _pts_for(writer.samples, tb)
                elif gap >= MIN_GAP_SAMPLES:
                    await self._fill(up, writer, gap)
            for out in resampler.resample(frame):
                await self._emit(up, writer, _pcm(out))
            try:
                frame = await track.recv()
            except MediaStreamError:
                break
        for out in resampler.resample(None):
            await self._emit(up, writer, _pcm(out))

    async def _fill(self, up: _Uplink, writer: PartWriter, samples: int) -> None:
        """Write (and feed) silence where audio never arrived, a second at a time."""
        while samples > 0:
            n = min(samples, SAMPLE_RATE)
            await self._emit(up, writer, bytes(n * SAMPLE_WIDTH), silence=True)
            samples -= n

    async def _emit(self, up: _Uplink, writer: PartWriter, pcm: bytes, *, silence: bool = False) -> None:
        """Write PCM to the part and feed it to the visit's sink."""
        if not pcm:
            return
        offset = writer.offset + writer.samples / SAMPLE_RATE
        if silence:
            await writer.write_silence(len(pcm) // SAMPLE_WIDTH)
        else:
            await writer.write(pcm)
        visit = up.visit
        visit.ends[up.speaker] = writer.offset + writer.samples / SAMPLE_RATE
        if visit.sink is None:
            return
        try:
            await visit.sink.feed(up.speaker, offset, pcm)
        except Exception:
            # The audio is on disk; transcription can catch up from there after the visit.
            log.exception("audio sink failed; it gets no more audio", extra={"visit_id": up.key.visit_id})
            visit.sink = None


def _pcm(frame: av.AudioFrame) -> bytes:
    return bytes(frame.planes[0])[: frame.samples * SAMPLE_WIDTH]


def _pts_for(samples: int, time_base: Fraction) -> int:
    return int(Fraction(samples, SAMPLE_RATE) / time_base)
