"""Visits: how a client gets in, the lifecycle in the case record, live presence, the audio uplink
and its store, and the runtime that holds a running process's visits."""

from visits.admission import JoinInfo
from visits.audio import AudioPart, AudioStore, PartWriter
from visits.hub import Peer, Presence, VisitHub
from visits.lifecycle import VisitSnapshot
from visits.runtime import Admission, Notifier, VisitOptions, VisitRuntime
from visits.uplink import AudioSink, UplinkError, UplinkKey, UplinkRegistry

__all__ = [
    "Admission",
    "AudioPart",
    "AudioSink",
    "AudioStore",
    "JoinInfo",
    "Notifier",
    "PartWriter",
    "Peer",
    "Presence",
    "UplinkError",
    "UplinkKey",
    "UplinkRegistry",
    "VisitHub",
    "VisitOptions",
    "VisitRuntime",
    "VisitSnapshot",
]
