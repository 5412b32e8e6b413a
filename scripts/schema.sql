-- The MySQL schema probe uses. `serviceapp` is the table of the Python design: a provider whose appkey
-- is not here refuses to start. Applied by scripts/services.sh (idempotent).
CREATE TABLE IF NOT EXISTS serviceapp (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    appkey      VARCHAR(128) NOT NULL,
    description VARCHAR(512) NOT NULL DEFAULT '',
    owner       VARCHAR(128) NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uk_appkey (appkey)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Every operator change (weight, enable, disable, apps): who, when, what, before and after.
-- Written by the `probe` CLI and console; shown in the console.
CREATE TABLE IF NOT EXISTS probe_audit (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms        BIGINT UNSIGNED NOT NULL,
    actor        VARCHAR(128) NOT NULL,
    action       VARCHAR(64) NOT NULL,
    target       VARCHAR(512) NOT NULL,
    before_value TEXT NOT NULL,
    after_value  TEXT NOT NULL,
    KEY idx_at (at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
