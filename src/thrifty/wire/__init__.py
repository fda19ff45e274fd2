"""External formats <-> core types: OpenAI chat ingress validation and responses."""
