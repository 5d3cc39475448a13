"""Contracts shared by both planes: the v1alpha1 custom resources and the GatewayConfig document.

Neither the operator nor the gateway is imported from here; both import this package.
"""
