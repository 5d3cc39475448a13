"""Pure render functions: custom resources in, Kubernetes manifests out (placeholder)."""
