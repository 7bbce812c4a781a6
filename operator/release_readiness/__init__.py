"""release-readiness: a Kubernetes operator and admission controller for pre-production checklists."""

__version__ = "0.1.0"
GROUP = "readiness.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CREATED_BY = f"{GROUP}/created-by"
"""Annotation stamped on a ReleaseReadiness at creation: who created it (for preventSelfApproval)."""

__all__ = ["API_VERSION", "CREATED_BY", "GROUP", "VERSION", "__version__"]
