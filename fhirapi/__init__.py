"""FHIR R4 (UK Core) in and out: partners send resources in with an organisation token; professionals read
the shared record out through the same access decision and audit as the pages.

parse -> ingest (mapping/, upsert) for what comes in; read -> serialise for what goes out; views stay thin.
All parsing, validating and building uses fhir.resources' R4B models: UK Core is R4, the package default R5.
"""
