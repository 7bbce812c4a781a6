"""The workload check catalog and the plain data it reads."""

from release_readiness.checks.model import CandidateSnapshot, CheckResult, Container, Workload
from release_readiness.checks.workload import CATALOG, SCAN_ANNOTATION, parse_params, run_workload_check

__all__ = [
    "CATALOG",
    "SCAN_ANNOTATION",
    "CandidateSnapshot",
    "CheckResult",
    "Container",
    "Workload",
    "parse_params",
    "run_workload_check",
]
