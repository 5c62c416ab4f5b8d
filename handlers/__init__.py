"""Operation handlers, resolved from openapi.yaml by operationId; one module per tag."""
