"""Development and test machinery: the embedded PostgreSQL, local servers, the demo data.

Nothing the service runs in production imports from here; pgserver, which the embedded
server needs, is a development requirement only.
"""
