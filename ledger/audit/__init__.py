"""The audit trail: hash chain, digests, Merkle proofs, dispute extracts (see docs.md)."""
