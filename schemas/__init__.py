"""Pydantic models shared by the gateway and the services.

They validate public request bodies and the payloads of events, and are the
source of the OpenAPI document and the event catalog.
"""
