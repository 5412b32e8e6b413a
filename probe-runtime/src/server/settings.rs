//! Applying the `[server]` options of a [`Config`](crate::config::Config) to a server's settings.

use super::ServerConfig;

impl ServerConfig {
    /// Takes the options of `config` that bound what peers can make the server do.
    pub(super) fn apply(&mut self, config: &crate::config::ServerConfig) {
        self.allow_unframed = config.allow_unframed;
        self.handshake_timeout = config.handshake_timeout;
        self.max_connections_per_peer = config.max_connections_per_peer.max(1);
        self.reserved_connections = config.reserved_connections;
        self.memory_budget = config.memory_budget;
    }
}
