"""The request flow: plan a route, execute attempts on providers, account for the result."""
