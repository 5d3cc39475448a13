"""The kopf operator: reconciles ModelPool and RoutingPolicy into Deployments, Services and the
gateway's GatewayConfig ConfigMap. Never proxies traffic; the gateway never imports it.
"""
