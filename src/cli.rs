//! Subcommands for the machine's owner, working on the data directory
//! whether the server is stopped or running (SQLite's locking keeps both
//! safe; a running server notices changes within two seconds):
//!
//! - `hearth admin list-users`
//! - `hearth admin reset-password USER` (prints a new random password)
//! - `hearth admin promote USER` (makes USER a server administrator)
//! - `hearth backup FILE` (a consistent copy, taken with SQLite's online backup)

use std::path::{Path, PathBuf};

use crate::error::StartupError;
use crate::store::{self, Store};

pub const USAGE: &str = "\
Usage:
  hearth admin list-users              [--data DIR]
  hearth admin reset-password USER     [--data DIR]
  hearth admin promote USER            [--data DIR]
  hearth backup FILE                   [--data DIR]
";

/// Whether `args` (without the program name) is a subcommand.
pub fn is_subcommand(args: &[String]) -> bool {
    matches!(args.first().map(String::as_str), Some("admin" | "backup"))
}

/// Runs a subcommand; the text to print on success.
pub fn run(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<String, StartupError> {
    let mut data = env("HEARTH_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("data"));
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--data" => {
                i += 1;
                data = PathBuf::from(
                    args.get(i).ok_or_else(|| StartupError::usage("option '--data' needs a value"))?,
                );
            }
            a if a.starts_with("--data=") => data = PathBuf::from(&a["--data=".len()..]),
            "-h" | "--help" => return Ok(USAGE.to_string()),
            a if a.starts_with('-') => {
                return Err(StartupError::usage(format!("unknown option '{a}'; run 'hearth admin --help'")))
            }
            a => words.push(a.to_string()),
        }
        i += 1;
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["admin", "list-users"] => list_users(&open(&data)?),
        ["admin", "reset-password", user] => reset_password(&mut open(&data)?, user),
        ["admin", "promote", user] => promote(&mut open(&data)?, user),
        ["backup", file] => backup(&open(&data)?, Path::new(file)),
        _ => Err(StartupError::usage(format!("unknown command; {}", USAGE.trim_end().replace('\n', " ")))),
    }
}

/// Opens an existing database (never creates an empty one by mistake).
fn open(data: &Path) -> Result<Store, StartupError> {
    let path = data.join(store::DB_FILE);
    if !path.exists() {
        return Err(StartupError::env(format!(
            "no hearth database at {}; point --data at the server's data directory",
            path.display()
        )));
    }
    Store::open_file(&path)
}

fn fail(e: impl std::fmt::Display) -> StartupError {
    StartupError::env(format!("the database could not be changed: {e}"))
}

fn find_user(store: &Store, name: &str) -> Result<store::UserRow, StartupError> {
    let users = store.read(store::load_users).map_err(fail)?;
    users.into_iter().find(|u| u.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
        StartupError::usage(format!("there is no user '{name}'; see 'hearth admin list-users'"))
    })
}

fn list_users(store: &Store) -> Result<String, StartupError> {
    let users = store.read(store::load_users).map_err(fail)?;
    let mut out = format!("{:<32}  {:<5}  {}\n", "USER", "ROLE", "STATE");
    for u in &users {
        let state = if u.disabled { "disabled" } else { "active" };
        out.push_str(&format!("{:<32}  {:<5}  {}\n", u.name, u.role, state));
    }
    out.push_str(&format!("{} users\n", users.len()));
    Ok(out)
}

fn reset_password(store: &mut Store, name: &str) -> Result<String, StartupError> {
    let user = find_user(store, name)?;
    let password = crate::auth::random_password();
    let hash = crate::auth::hash_password(&password).map_err(fail)?;
    store
        .write(|c| {
            crate::store::set_password(c, user.id, &hash)?;
            crate::store::set_user_disabled(c, user.id, false)?;
            crate::store::delete_user_sessions(c, user.id)
        })
        .map_err(fail)?;
    store.commit().map_err(fail)?;
    Ok(format!(
        "New password for {}: {password}\nThe account is enabled and every old session is logged out.\n",
        user.name
    ))
}

fn promote(store: &mut Store, name: &str) -> Result<String, StartupError> {
    let user = find_user(store, name)?;
    store.write(|c| crate::store::set_user_role(c, user.id, "admin")).map_err(fail)?;
    store.commit().map_err(fail)?;
    Ok(format!("{} is now a server administrator.\n", user.name))
}

fn backup(store: &Store, dest: &Path) -> Result<String, StartupError> {
    if dest.exists() {
        return Err(StartupError::usage(format!(
            "{} exists already; choose a new file name",
            dest.display()
        )));
    }
    let tmp = dest.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = store.backup_to(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(StartupError::env(format!("the backup failed: {e}")));
    }
    std::fs::rename(&tmp, dest).map_err(|e| {
        StartupError::env(format!("cannot write {}: {}", dest.display(), crate::certs::plain_io(&e)))
    })?;
    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(format!("Backup written to {} ({size} bytes).\n", dest.display()))
}
