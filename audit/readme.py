"""The bundle's README.txt: what is in it and how a third party verifies it, in plain words."""

from __future__ import annotations

from typing import Any

HOW_TO_VERIFY = """\
HOW TO VERIFY THIS BUNDLE

1. With the claims-ledger tool (no database needed):

       claims verify THIS_FOLDER_OR_ZIP --public-key KEY

   KEY is the ledger's public key as the association publishes it (`claims audit key`). It
   exits 0 when everything below holds, 1 naming the first failing file and check.

2. By hand (any SHA-256 tool):

   a. manifest.json.sha256 holds the SHA-256 of manifest.json (`sha256sum -c manifest.json.sha256`),
      and manifest.json.sig its Ed25519 signature (hex) under "public_key" in manifest.json's
      "ledger", which must be the key the association publishes.
   b. manifest.json lists every other file with its SHA-256: recompute each one.
   c. For each event in encounters.jsonl and rule_set_events.jsonl, take "state_json" exactly as
      written (UTF-8 bytes) and build the event digest:
         position (8 bytes, big-endian) || aggregate id (16 bytes) || version (8 bytes, big-endian)
         || length of topic (4 bytes, big-endian) || topic (UTF-8) || SHA-256(state_json)
      leaf = SHA-256(0x00 || event digest) must equal the "leaf" of that position in proofs.json;
      SHA-256(link_before || event digest) must equal its "link" (the ledger's hash chain).
   d. Fold the audit path ("path", bottom-up) from the leaf to the root with
      node = SHA-256(0x01 || left || right), as in RFC 9162 section 2.1.3.2 (leaf index =
      position - 1, tree size = ledger position): the result must equal "root" in proofs.json and
      "merkle_root" in manifest.json.
   e. totals.json must equal the sums of the amounts in explanations.json (exact decimals), and
      each rules/NAME.json must be the "content" of its rule-set event.

3. What this proves, and what it does not: the Merkle root and the chain head are both computed
   from the whole event log up to the ledger position; the proofs show that each included event
   is in that log, unchanged, without revealing any other event (only hashes). Compare the chain
   head and the Merkle root with a digest you received from the ledger earlier (claims audit
   digest), or have them checked against the database (`claims verify` on the ledger's side):
   the ledger records every extract's root in its append-only digest table.
"""


def readme_text(manifest: dict[str, Any]) -> str:
    """The README of a bundle, from its manifest (without the file list)."""
    ledger = manifest["ledger"]
    period = manifest["period"]
    rules = "\n".join(f"  - {r['name']}: sha256 {r['content_hash']} ({r['file']})"
                      for r in manifest["rule_sets"])
    refs = manifest.get("encounter_refs")
    only = f"Only the encounters listed: {len(refs)} requested.\n" if refs else ""
    return f"""\
CLAIMS-LEDGER AUDIT EXTRACT

Association : {manifest['association']}
Period      : {period['from']} to {period['to']} (act date, Europe/Paris)
Created     : {manifest['created_at']} by {manifest['created_by']} ({manifest['tool']})
Ledger position (events 1..N): {ledger['position']}
Chain head link : {ledger['chain_head_link']}
Merkle root     : {ledger['merkle_root']}
Rule sets:
{rules}
{only}
CONTENTS

  manifest.json           what, when, who, period, ledger position, chain head, rule sets and the
                          SHA-256 of every other file
  manifest.json.sha256    the SHA-256 of manifest.json
  encounters.jsonl        one line per encounter: its full event history (position, version,
                          topic, exact stored state, provenance: file, line, import batch)
  rule_set_events.jsonl   the ledger events that published each rule set's exact content
  rules/NAME.json         each rule set's canonical content
  explanations.json       per encounter and rule set: amount and lines with legal references
  totals.json             per rule set totals, differences against the first, insurer paid total
  proofs.json             Merkle inclusion proof of every included event against the ledger
  report.pdf              the human-readable report
  README.txt              this file

Patient identifiers appear only as keyed pseudonyms. No other association's data is included.

{HOW_TO_VERIFY}"""
