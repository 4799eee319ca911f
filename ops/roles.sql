-- Roles of the claims ledger and their privileges in the current database (see ops/roles.md).
-- Idempotent. Run by ops/roles.py (`create_roles`) as a superuser or a role with CREATEROLE that
-- owns the ledger's tables, after the schema exists (`claims init`). Passwords are set by
-- roles.py, never written here.
--
--   claims_owner   NOLOGIN: owns every ledger object; migrations run as it (SET ROLE).
--   claims_app     the application: reads and appends events, chain links and the key's
--                  fingerprint (claims_settings) (never UPDATE, DELETE or TRUNCATE them),
--                  writes the projection (read-side) tables.
--   claims_reader  read-only: analysts, auditors, `claims verify`.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'claims_owner') THEN
        CREATE ROLE claims_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'claims_app') THEN
        CREATE ROLE claims_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'claims_reader') THEN
        CREATE ROLE claims_reader LOGIN;
    END IF;
END
$$;

ALTER ROLE claims_app NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
ALTER ROLE claims_reader NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;

-- The owner owns the ledger's objects; the role running this script may act as it.
GRANT claims_owner TO CURRENT_USER;
GRANT USAGE, CREATE ON SCHEMA public TO claims_owner;
ALTER TABLE claimsledger_events OWNER TO claims_owner;
ALTER TABLE claims_chain OWNER TO claims_owner;
ALTER TABLE claims_chain_seals OWNER TO claims_owner;
ALTER TABLE claims_chain_verified OWNER TO claims_owner;
ALTER TABLE claims_chain_digests OWNER TO claims_owner;
ALTER TABLE claims_settings OWNER TO claims_owner;
ALTER TABLE claims_batch_keys OWNER TO claims_owner;
ALTER TABLE claims_quarantine OWNER TO claims_owner;
ALTER TABLE projection_tracking OWNER TO claims_owner;
ALTER TABLE projection_alarms OWNER TO claims_owner;
ALTER TABLE encounter_fact_versions OWNER TO claims_owner;
ALTER TABLE encounter_decisions OWNER TO claims_owner;
ALTER VIEW encounter_facts OWNER TO claims_owner;
ALTER FUNCTION claims_refuse_change() OWNER TO claims_owner;

-- Nobody else creates objects here or reads the ledger by default.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON claimsledger_events, claims_chain, claims_chain_seals, claims_chain_verified,
    claims_chain_digests,
    claims_settings,
    claims_batch_keys, claims_quarantine,
    projection_tracking, projection_alarms, encounter_fact_versions, encounter_decisions,
    encounter_facts FROM PUBLIC, claims_app, claims_reader;
GRANT USAGE ON SCHEMA public TO claims_app, claims_reader;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO claims_app, claims_reader',
                   current_database());
END
$$;

-- The write side: append and read only. The append-only triggers refuse UPDATE, DELETE and
-- TRUNCATE to every role, the owner included; the missing privileges refuse them first.
GRANT SELECT, INSERT ON claimsledger_events, claims_chain, claims_chain_seals, claims_chain_verified,
    claims_chain_digests,
    claims_settings TO claims_app;
GRANT USAGE ON SEQUENCE claims_chain_digests_id_seq, claims_chain_verified_id_seq TO claims_app;
DO $$
DECLARE
    seq text := pg_get_serial_sequence('claimsledger_events', 'notification_id');
BEGIN
    -- nextval (library saves) needs USAGE; the COPY writer's setval needs UPDATE.
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO claims_app', seq);
    -- Writers serialise on LOCK TABLE ... IN EXCLUSIVE MODE, which needs more than INSERT.
    -- MAINTAIN (PostgreSQL 17+) allows the lock without allowing any change of rows.
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON claimsledger_events TO claims_app';
    ELSE
        -- Older servers: only UPDATE allows that lock; the append-only trigger still
        -- refuses every UPDATE (see ops/roles.md).
        EXECUTE 'GRANT UPDATE ON claimsledger_events TO claims_app';
        RAISE NOTICE 'PostgreSQL < 17: claims_app holds UPDATE on the events table for its '
            'insert lock; the append-only trigger is the barrier against updates';
    END IF;
END
$$;

-- Quarantined text: the application seals and reads it back for the key holder; only the owner
-- shreds a batch's key (DELETE). The reader never sees either table.
GRANT SELECT, INSERT ON claims_batch_keys, claims_quarantine TO claims_app;

-- The read side: projection tables are rebuilt from the events and may be rewritten.
-- Add every new projection table here (the reader gets SELECT by default privileges).
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE
    ON projection_tracking, projection_alarms, encounter_fact_versions, encounter_decisions
    TO claims_app;
GRANT SELECT ON encounter_facts TO claims_app;

-- The reader reads everything and writes nothing.
GRANT SELECT ON claimsledger_events, claims_chain, claims_chain_seals, claims_chain_verified,
    claims_chain_digests, claims_settings,
    projection_tracking, projection_alarms, encounter_fact_versions, encounter_decisions,
    encounter_facts TO claims_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE claims_owner IN SCHEMA public
    GRANT SELECT ON TABLES TO claims_reader;
