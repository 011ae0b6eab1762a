//! Pointing the AWS backend at a local emulator (moto server): an SDK configuration with a fixed
//! endpoint, region and dummy credentials, and the rule the AWS tests follow to find one.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The variable that names the emulator the AWS tests use, e.g. `http://127.0.0.1:5599`.
pub const TEST_ENDPOINT_VAR: &str = "MAESTRO_TEST_AWS_ENDPOINT";
/// Where `infra/moto.sh` starts moto server; CI uses it when the variable is not set.
pub const DEFAULT_TEST_ENDPOINT: &str = "http://127.0.0.1:5599";

/// An SDK configuration for an emulator at `endpoint`: region `us-east-1` and the dummy
/// credentials `test`/`test`, set here rather than read from the environment. Never use this
/// against real AWS.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "maestro-emulator"))
        .load()
        .await
}

/// Whether something accepts TCP connections at the host and port of `endpoint`.
pub fn reachable(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let with_port = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let Ok(addresses) = with_port.to_socket_addrs() else {
        return false;
    };
    addresses.into_iter().any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// The emulator an AWS test should run against, by this rule:
///
/// - `MAESTRO_TEST_AWS_ENDPOINT` set: that endpoint, which must answer.
/// - not set, `CI` not `true`, and `moto_server` on the `PATH` (`pip install 'moto[server]'`):
///   moto started once by `infra/moto.sh` at [`DEFAULT_TEST_ENDPOINT`] (it keeps running), so
///   `cargo test --workspace` on a machine with moto runs the AWS tests too.
/// - not set, `CI` not `true`, no `moto_server`: `Ok(None)` after a loud `SKIPPED` line on
///   stderr: the test returns without checking anything.
/// - not set and `CI=true`: [`DEFAULT_TEST_ENDPOINT`] (where `infra/moto.sh` starts moto), which
///   must answer.
///
/// `Err` means the test must fail: an emulator was expected and does not answer.
pub fn test_endpoint(test: &str) -> Result<Option<String>, String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let endpoint = match std::env::var(TEST_ENDPOINT_VAR).ok().filter(|v| !v.trim().is_empty()) {
        Some(endpoint) => endpoint.trim().trim_end_matches('/').to_string(),
        None if ci => DEFAULT_TEST_ENDPOINT.to_string(),
        None if started_moto() => DEFAULT_TEST_ENDPOINT.to_string(),
        None => {
            // Straight to the stderr handle: the test harness captures `eprintln!` of passing
            // tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "**** SKIPPED: moto not running: {test} needs moto server (`pip install 'moto[server]'` puts \
                 moto_server on the PATH and the tests start it; or run infra/moto.sh, then export \
                 {TEST_ENDPOINT_VAR}={DEFAULT_TEST_ENDPOINT}) ****"
            );
            return Ok(None);
        }
    };
    if reachable(&endpoint) {
        Ok(Some(endpoint))
    } else {
        Err(format!(
            "{test}: the AWS emulator at {endpoint} does not answer (start it with infra/moto.sh){}",
            if ci { "; CI=true, so this test fails instead of skipping" } else { "" }
        ))
    }
}

/// Starts moto server with `infra/moto.sh` when `moto_server` is on the `PATH`, once per process
/// (and one process at a time, under a lock file: test binaries run side by side); whether it
/// answers at [`DEFAULT_TEST_ENDPOINT`] afterwards.
fn started_moto() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        if reachable(DEFAULT_TEST_ENDPOINT) {
            return true;
        }
        let on_path = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("moto_server").is_file()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/moto.sh");
        if !on_path || !script.is_file() {
            return false;
        }
        let lock = std::fs::File::create(std::env::temp_dir().join("maestro-moto-start.lock"));
        let _held = lock.as_ref().ok().map(std::fs::File::lock);
        let started = std::process::Command::new("bash")
            .arg(&script)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        started && reachable(DEFAULT_TEST_ENDPOINT)
    })
}
