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
