"""Visits: the lifecycle in the case record, live presence, the audio uplink and its store."""

from visits.admission import JoinInfo
from visits.audio import AudioPart, AudioStore, PartWriter
from visits.hub import Peer, VisitHub
from visits.lifecycle import VisitSnapshot
from visits.uplink import AudioSink, UplinkError, UplinkKey, UplinkRegistry

__all__ = [
    "AudioPart",
    "AudioSink",
    "AudioStore",
    "JoinInfo",
    "PartWriter",
    "Peer",
    "UplinkError",
    "UplinkKey",
    "UplinkRegistry",
    "VisitHub",
    "VisitSnapshot",
]
