"""Pure render functions: custom resources in, Kubernetes manifests (plain dicts) out.

``render_pool`` (``modelpool``) turns a ModelPool into its vLLM children; ``render_policy``
(``policy``) turns a RoutingPolicy and its pools into the gateway's ConfigMap, Deployment, Service
and NetworkPolicy. Called by the operator's handlers and by ``switchman render``; nothing here
talks to the Kubernetes API. A spec that cannot be rendered raises ``InvalidSpec`` (its
``UnresolvedReferences`` subclass when nothing the policy references exists yet).
"""

from switchman.operator.render.gatewayconfig import UnresolvedReferences
from switchman.operator.render.meta import InvalidSpec
from switchman.operator.render.modelpool import render_pool
from switchman.operator.render.policy import PolicyRender, render_policy

__all__ = ["InvalidSpec", "PolicyRender", "UnresolvedReferences", "render_policy", "render_pool"]
