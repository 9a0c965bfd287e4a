"""A local Kubernetes API server for one Deployment (server.py), with the API objects it serves (objects.py)."""

from tests.fakes.kubernetes.server import FakeKubernetes

__all__ = ["FakeKubernetes"]
