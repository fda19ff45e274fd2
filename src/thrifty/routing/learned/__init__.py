"""Learned routing: predict each model's quality for a prompt and choose the cheapest model
that is good enough (RouteLLM-style, calibrated offline). Import the parts from their modules;
this package imports nothing heavy."""
