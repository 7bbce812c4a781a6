"""Development-only code: the local control plane (etcd + kube-apiserver as processes), `make run`, the
CRD generator behind `make manifests`, and what tests and benchmarks share (harness.py, builders.py).

Kept out of the product: the wheel (and so the operator image) packages only `release_readiness`
(pyproject.toml `[tool.setuptools.packages.find]`), and nothing in `release_readiness` imports this package
(tests/unit/test_packaging.py and the image test check both). The Makefile and the tests put `operator/` on
PYTHONPATH to run it.
"""
