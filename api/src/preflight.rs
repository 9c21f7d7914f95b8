//! Checks the command line makes before it touches a database or a port, so
//! a mistake is reported at once and in words (connection refused at
//! host:port, a SQLite file that does not exist, an address in use) rather
//! than as a pool timeout seconds later or after migrating and seeding; and
//! the demo's JWT secret, kept in a file beside its SQLite database.
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file of a SQLite URL (`sqlite://file.db?mode=rwc`,
/// `sqlite:///abs/file.db`, `sqlite:file.db`); None for other databases
/// and in-memory ones.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// A SQLite URL naming a file that does not exist opens only with
/// `mode=rwc`; without it SQLite says "unable to open database file".
pub fn check_sqlite_file(url: &str) -> Result<(), String> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if url.contains("mode=rwc") || path.exists() {
        return Ok(());
    }
    let base = url.split('?').next().unwrap_or(url);
    let fixed = if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{base}?mode=rwc")
    };
    Err(format!(
        "the SQLite database {} does not exist; to create it, add mode=rwc to the URL: {fixed}",
        path.display()
    ))
}

/// The host and port of a PostgreSQL URL (port 5432 when absent); None for
/// other URLs and for Unix sockets.
pub fn postgres_addr(url: &str) -> Option<(String, u16)> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str().filter(|h| !h.is_empty())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), parsed.port().unwrap_or(5432)))
}

/// Refused at once when nothing listens at a PostgreSQL URL's address (the
/// pool would otherwise retry until its acquire timeout and report "pool
/// timed out"). Other failures are left to the real connection, which
/// reports them.
pub async fn check_postgres_reachable(url: &str) -> Result<(), String> {
    let Some((host, port)) = postgres_addr(url) else {
        return Ok(());
    };
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(format!(
            "connection refused at {host}:{port}: is PostgreSQL running and listening on that port?"
        )),
        _ => Ok(()),
    }
}

/// Fails when the address cannot be listened on (in use, not local, no
/// permission), before anything is migrated or seeded. The probe's socket
/// is closed again; the server binds its own.
pub fn check_bind(bind: &str) -> Result<(), String> {
    match std::net::TcpListener::bind(bind) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(format!(
            "cannot listen on {bind}: the address is already in use \
             (another salesops?); choose another with --bind or SALESOPS_BIND"
        )),
        Err(e) => Err(format!(
            "cannot listen on {bind}: {e}; choose another address with --bind or SALESOPS_BIND"
        )),
    }
}

/// Where the demo keeps its JWT secret: beside its SQLite database
/// (`salesops.db` -> `salesops.db.secret`). None for PostgreSQL and
/// in-memory databases.
pub fn demo_secret_path(database_url: &str) -> Option<PathBuf> {
    let db = sqlite_path(database_url)?;
    let mut name = db.file_name()?.to_os_string();
    name.push(".secret");
    Some(db.with_file_name(name))
}

/// The demo secret at `path`, if the file exists.
pub fn read_demo_secret(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The demo secret at `path`, created once (owner-only, mode 0600) when
/// missing, so tokens printed by one demo run still work after a restart.
/// Returns the secret and whether it was created now.
pub fn demo_secret(path: &Path) -> io::Result<(String, bool)> {
    if let Some(s) = read_demo_secret(path)? {
        return Ok((s, false));
    }
    let secret = crate::auth::generate_secret();
    let mut options = std::fs::OpenOptions::new();
    // create_new: two demos started at once cannot overwrite each other's.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(secret.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            Ok((secret, true))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok((read_demo_secret(path)?.unwrap_or_default(), false))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://salesops.db?mode=rwc"),
            Some(PathBuf::from("salesops.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("sqlite:x.db"), Some(PathBuf::from("x.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
        assert_eq!(
            demo_secret_path("sqlite://data/demo.db?mode=rwc"),
            Some(PathBuf::from("data/demo.db.secret"))
        );
    }

    #[test]
    fn postgres_addresses() {
        assert_eq!(
            postgres_addr("postgres://u:p@db.local:6543/x"),
            Some(("db.local".into(), 6543))
        );
        assert_eq!(
            postgres_addr("postgresql://u@127.0.0.1/x"),
            Some(("127.0.0.1".into(), 5432))
        );
        assert_eq!(
            postgres_addr("postgres://u@[::1]:5433/x"),
            Some(("::1".into(), 5433))
        );
        assert_eq!(postgres_addr("sqlite://x.db"), None);
    }

    #[test]
    fn a_missing_sqlite_file_needs_mode_rwc() {
        let missing =
            std::env::temp_dir().join(format!("salesops-missing-{}.db", std::process::id()));
        let url = format!("sqlite://{}", missing.display());
        assert_eq!(
            check_sqlite_file(&url),
            Err(format!(
                "the SQLite database {} does not exist; to create it, add mode=rwc to the URL: {url}?mode=rwc",
                missing.display()
            ))
        );
        assert_eq!(check_sqlite_file(&format!("{url}?mode=rwc")), Ok(()));
        assert_eq!(check_sqlite_file("sqlite::memory:"), Ok(()));
    }
}
