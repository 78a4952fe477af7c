//! Schema migrations: an ordered list, each applied once, in a transaction, and recorded in
//! `aloft_migrations`. Never edit a released migration; add the next one.

/// (version, name, SQL statements separated by `;`).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "clusters and operations",
        "CREATE TABLE clusters (
        name TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        cloud TEXT NOT NULL,
        region TEXT NOT NULL,
        zone TEXT,
        instance_type TEXT NOT NULL,
        num_nodes BIGINT NOT NULL,
        spot BIGINT NOT NULL,
        hourly_price TEXT NOT NULL,
        autostop_minutes BIGINT,
        autostop_down BIGINT NOT NULL,
        resources TEXT NOT NULL,
        generation BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE operations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        cluster TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX operations_by_state ON operations (state);
    CREATE TABLE operation_steps (
        operation_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        step TEXT NOT NULL,
        output TEXT NOT NULL,
        recorded_at BIGINT NOT NULL,
        PRIMARY KEY (operation_id, seq)
    )",
    ),
    (
        2,
        "jobs",
        "CREATE TABLE jobs (
        id BIGINT PRIMARY KEY,
        name TEXT,
        state TEXT NOT NULL,
        spec TEXT NOT NULL,
        submitted_at BIGINT NOT NULL,
        started_at BIGINT,
        ended_at BIGINT,
        exit_codes TEXT,
        runner_pid BIGINT
    );
    CREATE INDEX jobs_by_state ON jobs (state)",
    ),
    (
        3,
        "operation owners and parameters",
        "ALTER TABLE operations ADD COLUMN owner TEXT;
    ALTER TABLE operations ADD COLUMN heartbeat_at BIGINT;
    ALTER TABLE operations ADD COLUMN params TEXT",
    ),
    (
        4,
        "requests and their events",
        "CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        cluster TEXT,
        state TEXT NOT NULL,
        params TEXT NOT NULL,
        result TEXT,
        error TEXT,
        owner TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        finished_at BIGINT
    );
    CREATE INDEX requests_by_state ON requests (state);
    CREATE TABLE request_events (
        request_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (request_id, seq)
    )",
    ),
    (
        5,
        "request heartbeats",
        "ALTER TABLE requests ADD COLUMN heartbeat_at BIGINT",
    ),
];
