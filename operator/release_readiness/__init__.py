"""release-readiness: a Kubernetes operator and admission controller for pre-production checklists."""

__version__ = "0.1.0"
GROUP = "readiness.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = ["API_VERSION", "GROUP", "VERSION", "__version__"]
