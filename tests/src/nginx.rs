//! A real HTTP server for the repository tests: Debian's `nginx` serving a
//! directory on a loopback port, with a configuration of its own in a
//! temporary directory, stopped (killed and reaped) when the [`Nginx`] is
//! dropped, even when a test panics. `/moved/X` answers with a redirect
//! (302) to `/X`; ranges are served as nginx does (206).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs nginx.
const NGINX: &str = "/usr/sbin/nginx";

/// An nginx serving one directory; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Serve `root` at `http://127.0.0.1:<port>/` (a free port). Fails with
    /// a message when nginx is missing (install `nginx-light`,
    /// `.ci/deps.sh` does) or does not come up within 10 seconds.
    pub fn serve(root: &Path) -> Result<Nginx, String> {
        let bin = std::env::var_os("NGINX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(NGINX));
        if !bin.is_file() {
            return Err(format!(
                "{} not found: install nginx-light (.ci/deps.sh does) or set NGINX",
                bin.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("pfs-nginx")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let p = dir.path().display().to_string();
        // As root, the worker must be allowed into root-owned temp dirs.
        let user = if rustix::process::geteuid().is_root() {
            "user root root;"
        } else {
            ""
        };
        let conf = format!(
            "{user}\ndaemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/body;\n\
               proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n\
               uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
               types {{ application/octet-stream hpkg; }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {};\n    absolute_redirect off;\n\
                 location /moved/ {{ rewrite ^/moved/(.*)$ /$1 redirect; }}\n  }}\n}}\n",
            root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::File::create(&conf_path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut nginx = Nginx { child, port, dir };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!("nginx exited with {status}:\n{}", nginx.log()));
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("nginx did not listen on {port}:\n{}", nginx.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(nginx)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The access log so far (one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
