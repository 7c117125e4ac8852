"""The Kubernetes side: reading and scaling Deployments, and leader election.

Only this package talks to the Kubernetes API (through kubernetes-asyncio).
"""

from scaler.kube import lean_client

# Before any module of the package imports kubernetes-asyncio: its generated API and
# model classes, which scaler never uses, stay unloaded (see scaler.kube.lean_client).
lean_client.install()
