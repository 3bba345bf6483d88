//! Key files, passwords and `env://` keys: the file-system and terminal edge of `keys`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sigil::keys::{self, KeyAlgorithm, KeyError, Password, PrivateKey, PublicKey};

use super::exit::{ExitCode, Failure};
use super::files::read_bounded;

/// Reads a key given as a path or `env://VAR`, bounded in size.
pub(super) fn read_key_source(spec: &str) -> Result<Vec<u8>, Failure> {
    if let Some(var) = spec.strip_prefix("env://") {
        let v = std::env::var(var).map_err(|_| {
            Failure::new(
                ExitCode::Error,
                format!("environment variable {var} is not set"),
                "export the PEM key in that variable, or pass a file path",
            )
        })?;
        if v.len() > keys::MAX_KEY_FILE_BYTES {
            return Err(Failure::new(
                ExitCode::Error,
                format!("key in {var} is too large"),
                "check that the variable holds one PEM key",
            ));
        }
        return Ok(v.into_bytes());
    }
    read_bounded(std::path::Path::new(spec), keys::MAX_KEY_FILE_BYTES as u64, "key file")
}

fn key_failure(spec: &str, e: KeyError) -> Failure {
    let hint = match &e {
        KeyError::Decrypt => "check SIGIL_PASSWORD / COSIGN_PASSWORD, or that the file was not modified",
        KeyError::Unsupported(_) => "re-encrypt the key with `sigil import-key-pair` or cosign",
        KeyError::NotPem(_) | KeyError::Malformed(_) | KeyError::TooLarge => {
            "the file is corrupted or truncated, or not a key file"
        }
        _ => "use an ECDSA P-256 or Ed25519 key in cosign's format",
    };
    Failure::new(ExitCode::Error, format!("key {spec}: {e}"), hint)
}

/// How many times to ask for a password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Reading an existing key.
    Once,
    /// Creating a key: ask twice and compare.
    Confirm,
}

/// The password: `SIGIL_PASSWORD`, else `COSIGN_PASSWORD`, else the terminal.
pub fn read_password(prompt: Prompt) -> Result<Password, Failure> {
    for var in ["SIGIL_PASSWORD", "COSIGN_PASSWORD"] {
        if let Some(v) = std::env::var_os(var) {
            let bytes = std::os::unix::ffi::OsStringExt::into_vec(v);
            return Ok(warn_if_empty(Password::new(bytes)));
        }
    }
    let no_tty = |e: std::io::Error| {
        Failure::new(
            ExitCode::Error,
            format!("cannot read a password from the terminal: {e}"),
            "set SIGIL_PASSWORD (or COSIGN_PASSWORD) when running without a terminal",
        )
    };
    let first =
        zeroize::Zeroizing::new(rpassword::prompt_password("Enter password for private key: ").map_err(no_tty)?);
    if prompt == Prompt::Confirm {
        let second = zeroize::Zeroizing::new(
            rpassword::prompt_password("Enter password for private key again: ").map_err(no_tty)?,
        );
        if *first != *second {
            return Err(Failure::new(ExitCode::Error, "passwords do not match", "run the command again"));
        }
    }
    Ok(warn_if_empty(Password::new(first.as_bytes().to_vec())))
}

fn warn_if_empty(p: Password) -> Password {
    if p.is_empty() {
        eprintln!("warning: the private key password is empty: the key is protected only by file permissions");
    }
    p
}

/// Loads and decrypts a private key (`--key` of sign).
pub fn load_private_key(spec: &str) -> Result<PrivateKey, Failure> {
    let pem = read_key_source(spec)?;
    // Refuse unsupported parameters before asking for a password or running scrypt.
    keys::check_encrypted_key(&pem).map_err(|e| key_failure(spec, e))?;
    let pw = read_password(Prompt::Once)?;
    keys::decrypt_private_key(&pem, &pw).map_err(|e| key_failure(spec, e))
}

/// Loads a public key (`--key` of verify).
pub fn load_public_key(spec: &str) -> Result<PublicKey, Failure> {
    let pem = read_key_source(spec)?;
    PublicKey::from_pem(&pem).map_err(|e| {
        let hint = if keys::check_encrypted_key(&pem).is_ok() {
            "this is a private key: pass the .pub file (see `sigil public-key`)"
        } else {
            "pass a PEM public key (PUBLIC KEY block) for ECDSA P-256 or Ed25519"
        };
        Failure::new(ExitCode::Error, format!("public key {spec}: {e}"), hint)
    })
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

fn check_free(path: &Path, force: bool) -> Result<(), Failure> {
    if path.exists() && !force {
        return Err(Failure::new(
            ExitCode::Error,
            format!("{} already exists", path.display()),
            "pass --force to overwrite it, or choose another --output-key-prefix",
        ));
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(
            ExitCode::Error,
            format!("cannot write {}: {e}", path.display()),
            "check the directory exists and is writable",
        )
    };
    // Remove first so an existing file's looser mode is never kept (--force).
    if path.exists() {
        std::fs::remove_file(path).map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)
}

fn write_pair(key: &PrivateKey, prefix: &Path, force: bool) -> Result<ExitCode, Failure> {
    let key_path = with_ext(prefix, ".key");
    let pub_path = with_ext(prefix, ".pub");
    check_free(&key_path, force)?;
    check_free(&pub_path, force)?;
    let pw = read_password(Prompt::Confirm)?;
    let pem = keys::encrypt_private_key(key, &pw, keys::DEFAULT_SCRYPT).map_err(|e| key_failure("new key", e))?;
    let pub_pem = key.public_key().to_pem().map_err(|e| key_failure("new key", e))?;
    write_file(&key_path, pem.as_bytes(), 0o600)?;
    write_file(&pub_path, pub_pem.as_bytes(), 0o644)?;
    eprintln!("Private key written to {}", key_path.display());
    eprintln!("Public key written to {}", pub_path.display());
    Ok(ExitCode::Ok)
}

/// `generate-key-pair`.
pub fn generate(alg: KeyAlgorithm, prefix: &Path, force: bool) -> Result<ExitCode, Failure> {
    write_pair(&PrivateKey::generate(alg), prefix, force)
}

/// `import-key-pair`.
pub fn import(path: &Path, prefix: &Path, force: bool) -> Result<ExitCode, Failure> {
    let spec = path.display().to_string();
    let pem = read_key_source(&spec)?;
    let key = keys::parse_unencrypted_private_key(&pem).map_err(|e| key_failure(&spec, e))?;
    write_pair(&key, prefix, force)
}

/// `public-key`.
pub fn public_key(spec: &str, outfile: Option<&Path>) -> Result<ExitCode, Failure> {
    let key = load_private_key(spec)?;
    let pem = key.public_key().to_pem().map_err(|e| key_failure(spec, e))?;
    match outfile {
        Some(p) => write_file(p, pem.as_bytes(), 0o644)?,
        None => super::stdout::write_all(pem.as_bytes()),
    }
    Ok(ExitCode::Ok)
}
