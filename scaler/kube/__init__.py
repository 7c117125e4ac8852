"""The Kubernetes side: reading and scaling Deployments, and leader election.

Only this package talks to the Kubernetes API (through kubernetes-asyncio).
"""
