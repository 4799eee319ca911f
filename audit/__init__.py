"""The audit trail: chain verification, digests, Merkle proofs, dispute extracts (see docs.md).

The use case above both sides: it reads the write side's log (``ledger``) and the read side's
projections and rules (``projections``); only the CLI imports it.
"""
