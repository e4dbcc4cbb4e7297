"""Client peers for the uplink tests: a real aiortc RTCPeerConnection playing a WAV, as a browser would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamTrack

from visits.uplink import UplinkKey, UplinkRegistry


@dataclass
class RecordingSink:
    """An AudioSink that keeps what it was given (speaker, offset, samples per chunk)."""

    chunks: list[tuple[str, float, int]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    fail_after: int | None = None

    async def feed(self, speaker: str, offset: float, pcm: bytes) -> None:
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise RuntimeError("transcriber fell over")
        self.chunks.append((speaker, offset, len(pcm) // 2))

    async def finish(self, speaker: str) -> None:
        self.finished.append(speaker)


@dataclass
class ClientUplink:
    """A client's uplink peer and the WAV it plays."""

    pc: RTCPeerConnection
    track: MediaStreamTrack
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_ended(self) -> None:
        """Wait (at most 20 s) until the whole file has been handed to the sender."""
        async with asyncio.timeout(20):
            await self.ended.wait()

    async def close(self) -> None:
        self.track.stop()  # also stops a MediaPlayer's reader thread
        await self.pc.close()


async def offer_for(track: MediaStreamTrack | None = None, *, sendonly: bool = True) -> RTCPeerConnection:
    """Make a client peer with its local offer set (all candidates gathered, as the browser code does)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if track is None:
        pc.addTransceiver("audio", direction="sendonly")
    elif sendonly:
        pc.addTransceiver(track, direction="sendonly")
    else:
        pc.addTrack(track)
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def open_uplink(
    registry: UplinkRegistry,
    key: UplinkKey,
    source: Path,
    *,
    speaker: str = "client",
    visit_started_at: datetime,
    sendonly: bool = True,
) -> ClientUplink:
    """Offer `source` as the participant's uplink, apply the registry's answer and wait for `connected`."""
    player = MediaPlayer(str(source))
    assert player.audio is not None
    track = player.audio
    pc = await offer_for(track, sendonly=sendonly)
    client = ClientUplink(pc, track)
    track.on("ended", client.ended.set)
    answer = await registry.accept(key, speaker, visit_started_at, pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await wait_for(lambda: pc.connectionState == "connected", what="the client peer to connect")
    return client


async def wait_for(predicate: Callable[[], bool], *, within: float = 10.0, what: str = "a condition") -> None:
    """Poll `predicate` until it holds (for what the registry does not announce: files, peer states)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)
