//! STUB (replaced by helper)
use std::net::IpAddr;
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_locks: u64,
    pub max_waiters: u64,
    pub max_keys: u64,
    pub max_list_length: u64,
    pub max_value_bytes: usize,
    pub max_output_bytes: usize,
    pub max_subscriptions: u64,
    pub max_connections: u64,
    pub max_connections_per_ip: u64,
}
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub dreadlock_port: u16,
    pub default_lease_s: u64,
    pub gc_interval_s: u64,
    pub gc_max_idle_s: u64,
    pub auto_release_on_disconnect: bool,
    pub limits: Limits,
    pub read_timeout_s: u64,
    pub write_timeout_s: u64,
    pub shutdown_timeout_s: u64,
    pub auth_token: Option<Vec<u8>>,
    pub fence_field: bool,
    pub fence_state_file: Option<std::path::PathBuf>,
    pub log_filter: String,
    pub warnings: Vec<String>,
}
pub enum Action {
    Run(Config),
    Exit(i32),
}
#[derive(Debug)]
pub enum ConfigError {
    Usage(String),
    Invalid(String),
}
impl ConfigError {
    pub fn exit_code(&self) -> i32 {
        64
    }
    pub fn message(&self) -> &str {
        ""
    }
}
pub fn load<I, S>(args: I, _env: &dyn Fn(&str) -> Option<String>) -> Result<Action, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let a: Vec<String> = args
        .into_iter()
        .map(|s| s.into().to_string_lossy().into_owned())
        .collect();
    let port = a
        .iter()
        .position(|x| x == "--port")
        .map(|i| a[i + 1].parse().unwrap())
        .unwrap_or(6388);
    Ok(Action::Run(Config {
        host: "127.0.0.1".parse().unwrap(),
        port,
        dreadlock_port: 0,
        default_lease_s: 33,
        gc_interval_s: 5,
        gc_max_idle_s: 60,
        auto_release_on_disconnect: true,
        limits: Limits {
            max_locks: 1024,
            max_waiters: 0,
            max_keys: 65536,
            max_list_length: 0,
            max_value_bytes: 65536,
            max_output_bytes: 1 << 20,
            max_subscriptions: 1024,
            max_connections: 0,
            max_connections_per_ip: 0,
        },
        read_timeout_s: 23,
        write_timeout_s: 5,
        shutdown_timeout_s: 30,
        auth_token: None,
        fence_field: false,
        fence_state_file: None,
        log_filter: "info".into(),
        warnings: vec![],
    }))
}
