-- The MySQL schema probe uses, in full: what `probe db migrate` makes of an empty database, or of one
-- holding only the design's table. Applied by scripts/services.sh (idempotent). The tables are also
-- written out in probe-runtime/src/registry/mysql/schema.rs; a unit test keeps the two equal.

-- `serviceapp` is the table of the Python design: a provider whose appkey is not here refuses to start.
-- The design's table has only the unique `appkey`, and probe works on it as it is; `description` and
-- `owner` are probe's optional columns (`probe db migrate` adds them to an existing table).
CREATE TABLE IF NOT EXISTS serviceapp (
    appkey VARCHAR(128) NOT NULL,
    description VARCHAR(512) NOT NULL DEFAULT '',
    owner VARCHAR(128) NOT NULL DEFAULT '',
    UNIQUE KEY uk_appkey (appkey)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Every operator change (weight, enable, disable, apps): who, when, what, before and after.
-- Written by the `probe` CLI and console; shown in the console. Optional: without it, changes are
-- applied and reported with a warning that they were not audited.
CREATE TABLE IF NOT EXISTS probe_audit (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms BIGINT UNSIGNED NOT NULL,
    actor VARCHAR(128) NOT NULL,
    action VARCHAR(64) NOT NULL,
    target VARCHAR(512) NOT NULL,
    before_value TEXT NOT NULL,
    after_value TEXT NOT NULL,
    KEY idx_at (at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- What verifies each app's credential (issued by `probe apps add`, shown once): its ZooKeeper
-- digest id and caller token public key, and those of the credential before the last rotation
-- until it is retired. Never the secret. Optional: needed only with security on.
CREATE TABLE IF NOT EXISTS probe_app_credentials (
    appkey VARCHAR(128) NOT NULL PRIMARY KEY,
    zk_digest VARCHAR(200) NOT NULL,
    caller_key VARCHAR(64) NOT NULL,
    previous_zk_digest VARCHAR(200) NULL,
    previous_caller_key VARCHAR(64) NULL,
    issued_at_ms BIGINT UNSIGNED NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
