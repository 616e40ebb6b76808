//! Starting local services: moto server (and the project's Python venv it lives in).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The demo pipeline (`pipeline.toml` at the workspace root), which tests share. Panics if it
/// is invalid: that is a test failure.
pub fn demo_config() -> sluice_core::config::PipelineConfig {
    let path = workspace_root().join("pipeline.toml");
    sluice_core::config::PipelineConfig::from_path(&path.to_string_lossy())
        .expect("demo pipeline.toml is valid")
}

/// The project venv's Python (`SLUICE_PYTHON` overrides). Panics with instructions if absent.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_PYTHON") {
        return PathBuf::from(p);
    }
    let p = workspace_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `make venv` (or `make test`, which creates it) first",
        p.display()
    );
    p
}

/// A running moto server, alive while this process holds its stdin.
pub struct Moto {
    pub endpoint: String,
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

/// The process-wide moto server, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start_moto)
}

impl Moto {
    /// Starts a new moto server, separate from the process-wide one; it stops when dropped
    /// (or when the process exits).
    pub fn start() -> Moto {
        start_moto()
    }
}

fn start_moto() -> Moto {
    let root = workspace_root();
    let log_dir = root.join("target");
    let _ = std::fs::create_dir_all(&log_dir);
    let log = std::fs::File::create(log_dir.join(format!("moto-{}.log", std::process::id())))
        .expect("create moto log file");
    let mut child = Command::new(python())
        .arg(root.join("scripts/moto_runner.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start moto server (is the venv complete? run `make venv`)");
    let stdout = child.stdout.take().expect("moto stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read moto port");
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            panic!("moto server did not start (said {line:?}); see target/moto-*.log")
        });
    let stdin = child.stdin.take().expect("moto stdin");
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
        _stdin: Mutex::new(stdin),
    }
}

/// A name unique within this test run: `<prefix>-<pid>-<n>`, lowercase.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a Lambda function `name` in the moto server at `endpoint`, switching moto to its
/// Docker-less Lambda backend first: an asynchronous `Invoke` of it is then answered 202 (the
/// function itself never runs).
pub fn moto_function(endpoint: &str, name: &str) {
    let script = r##"
import io, json, sys, urllib.request, zipfile, boto3
ep, name = sys.argv[1], sys.argv[2]
req = urllib.request.Request(ep + "/moto-api/config", data=json.dumps({"lambda": {"use_docker": False}}).encode(), method="POST")
urllib.request.urlopen(req, timeout=10).read()
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
iam = boto3.client("iam", **kw)
try:
    iam.create_role(RoleName="sluice-replay-test", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
except iam.exceptions.EntityAlreadyExistsException:
    pass
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("bootstrap", "#!/bin/sh\n")
boto3.client("lambda", **kw).create_function(FunctionName=name, Runtime="provided.al2023", Role="arn:aws:iam::123456789012:role/sluice-replay-test", Handler="bootstrap", Code={"ZipFile": buf.getvalue()})
"##;
    let status = std::process::Command::new(python())
        .args(["-c", script, endpoint, name])
        .status()
        .expect("run python");
    assert!(status.success(), "create function {name} in moto");
}
