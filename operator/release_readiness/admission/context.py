"""What the admission adapter (webhooks.py) needs of the running operator, as a protocol: the index and its
listing state, the settings, who may do what, one API call (an access review) and the gate's recorder.
OperatorState (handlers.py) provides it; tests can provide less."""

from __future__ import annotations

from typing import Protocol

from release_readiness.admission.authority import Authority
from release_readiness.admission.gate import Decision, GateRequest
from release_readiness.config import Settings
from release_readiness.indexes import ClusterIndex
from release_readiness.kube import AccessReviewer
from release_readiness.sync import ListingSync

__all__ = ["AccessReviewer", "AdmissionContext", "DecisionRecorder"]


class DecisionRecorder(Protocol):
    def on_gate_decision(self, req: GateRequest, decision: Decision) -> None: ...


class AdmissionContext(Protocol):
    """Read-only members, so that an implementation may hold richer types (KubeClient, GateRecorder)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def index(self) -> ClusterIndex: ...
    @property
    def sync(self) -> ListingSync: ...
    @property
    def api(self) -> AccessReviewer: ...
    @property
    def recorder(self) -> DecisionRecorder: ...
    @property
    def authority(self) -> Authority: ...
