//! A config file's text, through `chatd::config::Config::from_toml_str`: the defaults < file
//! layers and the error reporting of `Config::load` (the environment is not read).
//!
//! Beyond "never panics" (`validate` included: it parses URLs, log filters and paths):
//! - a loaded config written back as TOML loads to the same config;
//! - a config that validates has the derived values the server relies on in range;
//! - an error is one line that names a key or the file (config.rs promises both).
#![no_main]

use chatd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A config file that is not UTF-8 is refused when read, before TOML parsing.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_toml_str(text) {
        Ok(config) => {
            // TOML integers are i64, so every loaded number fits back; `None` keys are omitted.
            let written = toml::to_string(&config).unwrap_or_else(|e| panic!("{config:?} does not serialize: {e}"));
            let reloaded = Config::from_toml_str(&written).unwrap_or_else(|e| panic!("{written:?} does not load: {e}"));
            assert_eq!(reloaded, config, "{written}");
            if config.validate().is_ok() {
                let workers = config.hash_workers();
                assert!((1..=256).contains(&workers), "{workers} hash workers");
                assert!(config.auth.refresh_token_ttl_secs >= config.auth.access_token_ttl_secs);
                assert!(config.cluster.node_timeout_secs >= 2 * config.cluster.heartbeat_secs);
                assert!(config.ws.max_frame_bytes >= 32 * 1024 && config.ws.outbound_queue >= 16);
            }
        }
        Err(e) => {
            let e = e.to_string();
            assert!(!e.contains(['\n', '\r']), "a multi-line error: {e:?}");
            assert!(e.starts_with("invalid configuration: "), "{e:?}");
        }
    }
});
