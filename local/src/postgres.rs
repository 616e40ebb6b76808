//! A throwaway PostgreSQL cluster from the machine's PostgreSQL binaries: `initdb` in a temp
//! dir, `pg_ctl start` on a free loopback port (as the `postgres` user when running as root,
//! since initdb refuses root), stopped when the owner drops it or the process exits.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Context, Result};

use crate::services::unique;

/// A running (or stopped) throwaway cluster.
pub struct Pg {
    pub port: u16,
    /// `host=127.0.0.1 port=... user=postgres dbname=postgres`.
    pub url: String,
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    /// A watchdog that stops the cluster when this process exits (its stdin closes).
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

/// The directory holding initdb / pg_ctl: `SLUICE_PG_BIN`, the PATH, or Debian's layout.
pub fn pg_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return Ok(p);
        }
    }
    for v in ["17", "16", "15", "14"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").exists() && d.join("pg_ctl").exists() {
                return Ok(d);
            }
        }
    }
    bail!("PostgreSQL binaries (initdb, pg_ctl) not found: install PostgreSQL or set SLUICE_PG_BIN")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Pg {
    /// Creates and starts a new cluster.
    pub fn start() -> Result<Pg> {
        Self::start_with(false)
    }

    /// Creates and starts a new cluster that accepts TLS only: a throwaway CA (`ca.pem` in
    /// [`Pg::dir`], made with the `openssl` command) signs the server's certificate for
    /// 127.0.0.1 / localhost, and `pg_hba` rejects plain connections.
    pub fn start_tls() -> Result<Pg> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Result<Pg> {
        let bin = pg_bin()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(unique("sluice-pg"));
        std::fs::create_dir_all(&dir)?;
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()?;
            if !st.success() {
                bail!("chown {} to postgres failed", dir.display());
            }
        }
        let port = free_port()?;
        let pg = Pg {
            port,
            url: format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            bin,
            dir,
            as_postgres,
            watchdog: Mutex::new(None),
        };
        let data = pg.dir.join("data");
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ])
            .output()
            .context("run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        if tls {
            pg.make_certificates()?;
        }
        pg.resume()?;
        pg.arm_watchdog()?;
        Ok(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts (or restarts) the server on the same port and data directory.
    pub fn resume(&self) -> Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &opts, "-l"])
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .context("run pg_ctl start")?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            bail!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Stops the server, closing every connection (`-m fast`: committed data survives, as it
    /// would on a real server with durable commits); [`Pg::resume`] restarts it.
    pub fn stop(&self) -> Result<()> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .context("run pg_ctl stop")?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn make_certificates(&self) -> Result<()> {
        let d = &self.dir;
        let run = |args: &[&str]| -> Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .context("run openssl")?;
            if !out.status.success() {
                bail!(
                    "openssl {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sluice test CA",
        ])?;
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ])?;
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ])?;
        let data = self.data();
        std::fs::copy(d.join("server.crt"), data.join("server.crt"))?;
        std::fs::copy(d.join("server.key"), data.join("server.key"))?;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?;
        writeln!(
            conf,
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'"
        )?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )?;
        if self.as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()?;
            if !st.success() {
                bail!("chown of the data directory failed");
            }
        }
        let st = Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key"))
            .status()?;
        if !st.success() {
            bail!("chmod of the server key failed");
        }
        Ok(())
    }

    fn arm_watchdog(&self) -> Result<()> {
        // `cat` returns when our end of its stdin closes (process exit included), then the
        // cluster is stopped and its directory removed. The watchdog ignores INT/TERM/HUP so a
        // signal to the whole process group (Ctrl-C, timeout) cannot skip the cleanup.
        let pg_ctl = self.bin.join("pg_ctl");
        let runner = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "trap '' INT TERM HUP; cat >/dev/null; {runner}{} -D {} -m immediate stop >/dev/null 2>&1; rm -rf {}",
            pg_ctl.display(),
            self.data().display(),
            self.dir.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start postgres watchdog")?;
        let stdin = child.stdin.take().context("watchdog stdin")?;
        if let Ok(mut w) = self.watchdog.lock() {
            *w = Some((child, stdin));
        }
        Ok(())
    }

    /// The data directory's parent (logs live there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs SQL through psql-free means: connects with tokio-postgres and returns the client.
    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(mut w) = self.watchdog.lock() {
            if let Some((mut child, mut stdin)) = w.take() {
                let _ = stdin.flush();
                drop(stdin);
                let _ = child.wait();
            }
        }
    }
}

/// The process-wide cluster shared by tests (each test uses its own schema).
pub fn shared_postgres() -> &'static Pg {
    static PG: OnceLock<Pg> = OnceLock::new();
    PG.get_or_init(|| match Pg::start() {
        Ok(pg) => pg,
        Err(e) => panic!("cannot start a throwaway PostgreSQL cluster: {e:#}"),
    })
}
