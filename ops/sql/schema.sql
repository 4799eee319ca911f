-- The ledger's own tables beside the library's event table (claimsledger_events).
-- Idempotent: applied by `claims init` and before every command that writes.

-- Append-only, enforced by the database (the triggers below): a correction is a new event.
CREATE OR REPLACE FUNCTION claims_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'claims-ledger: % on % is refused: the event log is append-only (a correction is a new event)',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;


-- Tamper-evident hash chain over the notification log: one link per event position.
CREATE TABLE IF NOT EXISTS claims_chain (
    notification_id bigint PRIMARY KEY,
    link bytea NOT NULL
);

-- Seals (ledger/seal.py): every write of the ledger ends with a keyed MAC of the new chain head,
-- under a key that never enters the database; events past the last seal were written by another
-- path. Append-only like the log.
CREATE TABLE IF NOT EXISTS claims_chain_seals (
    notification_id bigint PRIMARY KEY,
    seal bytea NOT NULL,
    sealed_at timestamptz NOT NULL DEFAULT now()
);

-- Full verifications of the chain (audit/gate.py): where one ended OK (its head, sealed under the
-- ledger's key when it was given), or that one failed (ok false, link null). The checks before
-- each result start from the last one if it was OK. Append-only like the log.
CREATE TABLE IF NOT EXISTS claims_chain_verified (
    id bigserial PRIMARY KEY,
    notification_id bigint NOT NULL,
    ok boolean NOT NULL,
    link bytea,
    seal bytea,
    verified_at timestamptz NOT NULL DEFAULT now()
);

-- Chain digests: the chain head (and an extract's Merkle root) recorded from time to time, to be
-- handed out and kept elsewhere (audit/digest.py). Append-only like the log.
CREATE TABLE IF NOT EXISTS claims_chain_digests (
    id bigserial PRIMARY KEY,
    position bigint NOT NULL,
    link bytea NOT NULL,
    merkle_root bytea,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    note text,
    signature bytea,
    public_key bytea
);
CREATE INDEX IF NOT EXISTS claims_chain_digests_position ON claims_chain_digests (position);
-- Digests are signed (audit/digest.py) since the ledger has a signing key: the columns are added
-- to a ledger made before, only where missing (ALTER TABLE would lock the table every time).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'claims_chain_digests'::regclass
                   AND attname = 'signature' AND NOT attisdropped) THEN
        ALTER TABLE claims_chain_digests ADD COLUMN signature bytea, ADD COLUMN public_key bytea;
    END IF;
END
$$;

-- The ledger's settings, one row: the fingerprint of its pseudonymisation key (HMAC-SHA256 of a
-- constant under the key, never the key; ledger/keycheck.py), recorded by its first batch.
-- Append-only like the log: a ledger's key never changes.
CREATE TABLE IF NOT EXISTS claims_settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key_fingerprint bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only, enforced by the database on the log and its companions: UPDATE, DELETE and
-- TRUNCATE are refused to every role, the owner included. A trigger is made only where it is
-- missing: making one locks its table, and an init running beside an ingest must not wait on
-- the ingest's lock while holding the projection's tables (a deadlock).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['claimsledger_events', 'claims_chain', 'claims_chain_seals',
                             'claims_chain_verified', 'claims_chain_digests',
                             'claims_settings'] LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger
                       WHERE tgrelid = t::regclass AND tgname = t || '_append_only') THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW '
                           'EXECUTE FUNCTION claims_refuse_change()', t || '_append_only', t);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_trigger
                       WHERE tgrelid = t::regclass AND tgname = t || '_no_truncate') THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                           'EXECUTE FUNCTION claims_refuse_change()', t || '_no_truncate', t);
        END IF;
    END LOOP;
    -- The events table's triggers under their former names.
    IF EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'claimsledger_events'::regclass
               AND tgname IN ('claims_events_append_only', 'claims_events_no_truncate')) THEN
        DROP TRIGGER IF EXISTS claims_events_append_only ON claimsledger_events;
        DROP TRIGGER IF EXISTS claims_events_no_truncate ON claimsledger_events;
    END IF;
END
$$;

-- Read side (projections): can be dropped and rebuilt from the events at any time.
CREATE TABLE IF NOT EXISTS projection_tracking (
    name text PRIMARY KEY,
    position bigint NOT NULL
);

-- Events a projection could not project (malformed, or not what their topic promises): left out,
-- with their position and PostgreSQL's reason, so that the rest of the log is still projected.
CREATE TABLE IF NOT EXISTS projection_alarms (
    name text NOT NULL,
    position bigint NOT NULL,
    reason text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, position)
);

CREATE TABLE IF NOT EXISTS encounter_fact_versions (
    encounter_id uuid NOT NULL,
    version integer NOT NULL,
    notification_id bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    association text NOT NULL,
    encounter_ref text NOT NULL,
    regulation_origin text NOT NULL,
    regulated_at timestamptz,
    performed_at timestamptz NOT NULL,
    act text NOT NULL,
    patient_pseudonym text NOT NULL,
    patient_birth_year integer,
    doctor_rpps text NOT NULL,
    treating_doctor boolean NOT NULL,
    pdsa boolean NOT NULL,
    billed_codes text NOT NULL,
    billed_amount numeric(12, 2) NOT NULL,
    invoice_ref text,
    voided boolean NOT NULL DEFAULT false,
    PRIMARY KEY (encounter_id, version)
);
CREATE INDEX IF NOT EXISTS encounter_fact_versions_ref
    ON encounter_fact_versions (association, encounter_ref);

CREATE TABLE IF NOT EXISTS encounter_decisions (
    encounter_id uuid NOT NULL,
    version integer NOT NULL,
    notification_id bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    decided_at date NOT NULL,
    paid_amount numeric(12, 2) NOT NULL,
    paid_codes text NOT NULL,
    rejected_codes text NOT NULL,
    reason text,
    PRIMARY KEY (encounter_id, version)
);

-- The facts as currently known: the latest version of each encounter that is not voided.
CREATE OR REPLACE VIEW encounter_facts AS
SELECT * FROM (
    SELECT DISTINCT ON (encounter_id) *
    FROM encounter_fact_versions
    ORDER BY encounter_id, version DESC
) latest
WHERE NOT voided;

-- Quarantined rows' text, sealed outside the event log (ledger/quarantine.py): the log keeps a
-- keyed digest of each row's text, never the text. Each batch's key is one row of
-- claims_batch_keys: deleting it erases the batch's quarantined text for good (crypto-shredding).
-- Neither table is append-only, by design; only the owner and the application read them.
CREATE TABLE IF NOT EXISTS claims_batch_keys (
    batch_id uuid PRIMARY KEY,
    key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS claims_quarantine (
    batch_id uuid NOT NULL,
    line integer NOT NULL,
    sealed bytea NOT NULL,
    PRIMARY KEY (batch_id, line)
);
