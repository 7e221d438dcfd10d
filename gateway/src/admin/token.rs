//! Where the admin token comes from: the environment, the config, or a token file that is
//! generated (random, mode 0600) at first start. The token itself is never logged.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::{check_token, AdminConfig, Secret};

/// The environment variable that carries the token; it overrides `admin.token`.
pub const TOKEN_ENV: &str = "POOLGATE_ADMIN_TOKEN";

/// How callers are checked.
#[derive(Clone, Debug)]
pub enum Access {
    /// Every route but `/health` needs `Authorization: Bearer <token>`.
    Token(Secret),
    /// No check at all (`admin.insecure_no_auth`, loopback only).
    Open,
}

/// Where the token was found, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOrigin {
    Environment,
    Config,
    /// Read from an existing token file.
    File(PathBuf),
    /// Generated into a new token file.
    Generated(PathBuf),
    /// Authentication is off.
    Disabled,
}

impl TokenOrigin {
    /// The token file in use, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            TokenOrigin::File(p) | TokenOrigin::Generated(p) => Some(p),
            _ => None,
        }
    }
}

/// Why no usable token could be found or made.
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("{TOKEN_ENV}: {0}")]
    BadEnvironment(String),
    #[error("{TOKEN_ENV} is set but admin.insecure_no_auth is true: choose one")]
    EnvironmentWithoutAuth,
    #[error("token file {path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("cannot read token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create token file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a random token: {0}")]
    Random(String),
    #[error(
        "no place for the admin token file: set admin.token_file, or STATE_DIRECTORY, \
         XDG_STATE_HOME or HOME"
    )]
    NoStateDir,
}

/// Decides how the admin API checks callers, generating a token file when nothing else
/// provides a token. Order: `POOLGATE_ADMIN_TOKEN`, `admin.token`, then the token file
/// (`admin.token_file` or [`default_token_file`]), created if missing.
pub fn resolve(config: &AdminConfig) -> Result<(Access, TokenOrigin), TokenError> {
    let env = std::env::var(TOKEN_ENV).ok();
    if config.insecure_no_auth {
        if env.is_some() {
            return Err(TokenError::EnvironmentWithoutAuth);
        }
        return Ok((Access::Open, TokenOrigin::Disabled));
    }
    if let Some(token) = env {
        check_token(&token).map_err(TokenError::BadEnvironment)?;
        return Ok((Access::Token(Secret::new(token)), TokenOrigin::Environment));
    }
    if let Some(token) = &config.token {
        return Ok((Access::Token(token.clone()), TokenOrigin::Config));
    }
    let path = match &config.token_file {
        Some(p) => p.clone(),
        None => default_token_file()?,
    };
    match read_token_file(&path)? {
        Some(token) => Ok((Access::Token(token), TokenOrigin::File(path))),
        None => {
            let token = generate_token_file(&path)?;
            Ok((Access::Token(token), TokenOrigin::Generated(path)))
        }
    }
}

/// The token file when `admin.token_file` is not set: `$STATE_DIRECTORY/admin-token` under
/// systemd (`StateDirectory=`), else `$XDG_STATE_HOME/poolgate/admin-token`, where
/// `XDG_STATE_HOME` defaults to `~/.local/state`.
pub fn default_token_file() -> Result<PathBuf, TokenError> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    // systemd may list several state directories, separated by colons; the first is ours.
    if let Some(dir) = std::env::var("STATE_DIRECTORY")
        .ok()
        .and_then(|v| v.split(':').next().map(PathBuf::from))
        .filter(|p| p.is_absolute())
    {
        return Ok(dir.join("admin-token"));
    }
    if let Some(dir) = absolute("XDG_STATE_HOME") {
        return Ok(dir.join("poolgate/admin-token"));
    }
    if let Some(home) = absolute("HOME") {
        return Ok(home.join(".local/state/poolgate/admin-token"));
    }
    Err(TokenError::NoStateDir)
}

/// The token in `path`, or `None` when the file does not exist.
fn read_token_file(path: &Path) -> Result<Option<Secret>, TokenError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TokenError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let token = text.trim_end_matches(['\n', '\r']);
    check_token(token).map_err(|reason| TokenError::BadFile {
        path: path.to_path_buf(),
        reason,
    })?;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "admin token file {} can be read by other users (mode {mode:o}); \
                 `chmod 600` it",
                path.display()
            );
        }
    }
    Ok(Some(Secret::new(token)))
}

/// Writes a new random token to `path`, readable and writable by its owner only. Missing
/// parent folders are created, accessible by the owner only.
fn generate_token_file(path: &Path) -> Result<Secret, TokenError> {
    let create_error = |source| TokenError::Create {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(create_error)?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // create_new: never overwrite a token someone else just wrote. The mode is set at
    // creation, so the token is never readable by others, whatever the umask.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(create_error)?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(create_error)?;
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("poolgate-token-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_token_file_is_generated_once_with_mode_0600_and_then_reused() {
        let dir = temp_dir("gen");
        let path = dir.join("nested/admin-token");
        let first = generate_token_file(&path).unwrap();
        assert_eq!(first.expose().len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(read_token_file(&path).unwrap(), Some(first));
        // Never overwritten.
        assert!(matches!(
            generate_token_file(&path),
            Err(TokenError::Create { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_token_file_is_refused_without_showing_its_content() {
        let dir = temp_dir("bad");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t");
        std::fs::write(&path, "tiny\n").unwrap();
        let e = read_token_file(&path).unwrap_err().to_string();
        assert!(e.contains("at least 16") && !e.contains("tiny"), "{e}");
        assert_eq!(read_token_file(&dir.join("none")).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
